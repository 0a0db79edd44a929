"""``e2fsck -fn``: the filesystem's own consistency check, read-only.

``-n`` opens the image read-only and answers "no" to every question, so the
image is never changed. A missing e2fsck degrades to a note naming the package:
the rest of the audit does not need it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nexlab.errors import CommandError, ToolMissingError
from nexlab.run import run

#: e2fsck's exit status is a bit mask; 4 means errors were left uncorrected.
_UNCORRECTED = 4
_OPERATIONAL = 8

#: Lines of e2fsck's progress chatter that say nothing about errors.
_PASSES = ("Pass ", "e2fsck ", "Warning: skipping journal recovery")


@dataclass(frozen=True)
class FsckResult:
    #: True clean, False errors found, None not checked (see ``note``).
    clean: bool | None
    exit_code: int | None
    errors: tuple[str, ...]
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {"clean": self.clean, "exit_code": self.exit_code, "errors": list(self.errors), "note": self.note}


def fsck(image: str | os.PathLike[str], *, timeout: float = 600) -> FsckResult:
    try:
        result = run(["e2fsck", "-fn", os.fspath(image)], check=False, timeout=timeout)
    except ToolMissingError as exc:
        return FsckResult(None, None, (), note=f"e2fsck not run: {exc}")
    except CommandError as exc:  # only a timeout reaches here: check=False
        return FsckResult(None, None, (), note=f"e2fsck not run: {exc}")
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    if result.returncode & _OPERATIONAL:
        return FsckResult(None, result.returncode, tuple(lines[-5:]), note="e2fsck could not check the image")
    if result.returncode & _UNCORRECTED:
        errors = [line for line in lines if not line.startswith(_PASSES) and "files," not in line]
        return FsckResult(False, result.returncode, tuple(errors))
    return FsckResult(True, result.returncode, ())
