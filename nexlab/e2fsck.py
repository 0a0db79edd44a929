"""What an ``e2fsck`` exit status means: the one decoder for every caller.

The status is a bit mask (e2fsck(8)): 1 errors corrected, 2 corrected and the
system should reboot, 4 errors left uncorrected, 8 operational error, 16 usage
error, 32 cancelled, 128 shared-library error. Bits combine: under ``-n``, 12
(4 | 8) is the common "found errors, then gave up" (for instance "Cannot
proceed without a root inode", then "e2fsck: aborted") — the errors are real
findings even though the check did not finish, so bit 4 is read before bit 8.
"""

from __future__ import annotations

from dataclasses import dataclass

CORRECTED = 1
REBOOT = 2
UNCORRECTED = 4
OPERATIONAL = 8
USAGE = 16
CANCELLED = 32
LIBRARY = 128


@dataclass(frozen=True)
class ExitStatus:
    code: int

    @property
    def errors_found(self) -> bool:
        """e2fsck saw errors (left or fixed): true even when it then aborted."""
        return bool(self.code & (UNCORRECTED | CORRECTED | REBOOT))

    @property
    def completed(self) -> bool:
        """The check ran to its end (no operational, usage, cancel or library error)."""
        return not self.code & (OPERATIONAL | USAGE | CANCELLED | LIBRARY)

    @property
    def clean(self) -> bool:
        """Checked to the end and nothing found: the only status a build may ship."""
        return self.code == 0

    def describe(self) -> str:
        if self.clean:
            return "clean"
        parts = []
        if self.code & UNCORRECTED:
            parts.append("errors left uncorrected")
        if self.code & (CORRECTED | REBOOT):
            parts.append("errors corrected")
        if self.code & OPERATIONAL:
            parts.append("aborted (operational error)")
        if self.code & USAGE:
            parts.append("usage error")
        if self.code & CANCELLED:
            parts.append("cancelled")
        if self.code & LIBRARY:
            parts.append("shared library error")
        return ", ".join(parts) or f"exit status {self.code}"


def exit_status(code: int) -> ExitStatus:
    return ExitStatus(code)
