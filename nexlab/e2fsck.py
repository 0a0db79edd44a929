"""``e2fsck -fn``, run one way for every caller, and what its exit status means.

The status is a bit mask (e2fsck(8)): 1 errors corrected, 2 corrected and the
system should reboot, 4 errors left uncorrected, 8 operational error, 16 usage
error, 32 cancelled, 128 shared-library error. Bits combine: under ``-n``, 12
(4 | 8) is the common "found errors, then gave up" (for instance "Cannot
proceed without a root inode", then "e2fsck: aborted") — the errors are real
findings even though the check did not finish, so bit 4 is read before bit 8.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from nexlab.errors import CommandError
from nexlab.run import run_bounded

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


#: The read-only full check: ``-f`` even when the superblock says clean, ``-n`` opens the
#: image read-only and answers "no" to every question, so the image is never changed.
CHECK = ("e2fsck", "-fn")
#: Seconds a build's check may take: a clean 1 GiB image checks in about a second, and
#: a corrupt one can make e2fsck restart without end.
BUILD_TIMEOUT = 600.0


@dataclass(frozen=True)
class Check:
    """What one ``e2fsck -fn`` said about an image."""

    image: str
    #: None when e2fsck did not finish within its time limit (it was killed).
    status: ExitStatus | None
    #: The non-blank output lines kept (stdout and stderr merged, head and tail).
    lines: tuple[str, ...]
    #: Lines read but not kept (the middle of a very long report).
    dropped: int = 0
    #: The time limit it ran under (seconds).
    timeout: float = BUILD_TIMEOUT

    @property
    def finished(self) -> bool:
        return self.status is not None

    @property
    def clean(self) -> bool:
        return self.status is not None and self.status.clean

    def error(self) -> CommandError:
        """The error a build raises for an image that is not clean."""
        if self.status is None:
            return CommandError([*CHECK, self.image], -1, "\n".join(self.lines), timeout=self.timeout)
        return CommandError([*CHECK, self.image], self.status.code, "\n".join(self.lines) or self.status.describe())


def check(
    image: str | os.PathLike[str],
    *,
    timeout: float = BUILD_TIMEOUT,
    env: Mapping[str, str] | None = None,
    keep_head: int = 200,
    keep_tail: int = 200,
) -> Check:
    """``e2fsck -fn image`` under a time limit, in bounded memory; never changes the image.

    A missing e2fsck raises ``ToolMissingError`` (naming e2fsprogs); a status that
    is not clean is returned, not raised: the callers decide what it means.
    """
    path = os.fspath(image)
    result = run_bounded([*CHECK, path], timeout=timeout, keep_head=keep_head, keep_tail=keep_tail, env=env)
    status = exit_status(result.returncode) if result.returncode is not None else None
    lines = tuple(line.strip() for line in result.lines if line.strip())
    return Check(path, status, lines, result.dropped, timeout)


def ensure_clean(image: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Check:
    """``check`` that raises ``CommandError`` unless the image is clean: the gate of every build."""
    checked = check(image, env=env)
    if not checked.clean:
        raise checked.error()
    return checked
