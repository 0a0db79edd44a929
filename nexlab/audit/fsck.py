"""``e2fsck -fn``: the filesystem's own consistency check, read-only.

``-n`` opens the image read-only and answers "no" to every question, so the
image is never changed. A missing e2fsck degrades to a note naming the package:
the rest of the audit does not need it.

A corrupt image can keep e2fsck busy for ever ("Restarting e2fsck from the
beginning..." in a loop), printing as it goes: the check runs under a time
limit and only the first and last lines of its output are kept, so an audit
always finishes, in bounded memory, and says the check did not finish.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nexlab import e2fsck
from nexlab.display import Summarized
from nexlab.errors import ToolMissingError

#: Seconds e2fsck may take by default: minutes on a corrupt image that makes it loop
#: are not worth a CI gate's time; a clean 1 GiB rootfs checks in about a second.
DEFAULT_TIMEOUT = 60.0
#: Output lines kept from the start and from the end (the rest is counted, not kept).
KEEP_HEAD = 200
KEEP_TAIL = 50

#: Lines of e2fsck's progress chatter that say nothing about errors.
_PASSES = ("Pass ", "e2fsck ", "Warning: skipping journal recovery")


@dataclass(frozen=True)
class FsckResult(Summarized):
    #: True clean, False errors found, None not checked (see ``note``).
    clean: bool | None
    exit_code: int | None
    errors: tuple[str, ...]
    note: str = ""
    #: False when e2fsck was stopped at the time limit (``clean`` is then None).
    finished: bool = True
    #: Output lines read but not kept (the middle of a very long report).
    dropped_lines: int = 0

    def summary(self) -> str:
        if self.clean:
            return "clean"
        if self.clean is False:
            return f"errors (exit {self.exit_code}): {len(self.errors) + self.dropped_lines} lines"
        return f"not checked: {self.note}" if self.note else "not checked"

    def to_json(self) -> dict[str, object]:
        return {
            "clean": self.clean,
            "exit_code": self.exit_code,
            "errors": list(self.errors),
            "note": self.note,
            "finished": self.finished,
            "dropped_lines": self.dropped_lines,
        }


def fsck(
    image: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    keep_head: int = KEEP_HEAD,
    keep_tail: int = KEEP_TAIL,
) -> FsckResult:
    try:
        result = e2fsck.check(image, timeout=timeout, keep_head=keep_head, keep_tail=keep_tail)
    except ToolMissingError as exc:
        return FsckResult(None, None, (), note=f"e2fsck not run: {exc}")
    lines = list(result.lines)
    errors = tuple(line for line in lines if not line.startswith(_PASSES) and "files," not in line)
    cut = f"{result.dropped} more lines of output not kept" if result.dropped else ""
    if result.status is None:
        return FsckResult(
            None,
            None,
            errors,
            note=f"e2fsck did not finish within {timeout:g} s and was stopped" + (f" ({cut})" if cut else ""),
            finished=False,
            dropped_lines=result.dropped,
        )
    status = result.status
    # Errors first: exit 12 (4 | 8) found errors and then aborted; they are still errors.
    if status.errors_found:
        notes = ["e2fsck found errors, then aborted"] if not status.completed else []
        notes += [cut] if cut else []
        return FsckResult(False, status.code, errors, note="; ".join(notes), dropped_lines=result.dropped)
    if not status.completed:
        return FsckResult(
            None,
            status.code,
            tuple(lines[-5:]),
            note=f"e2fsck could not check the image ({status.describe()})",
            dropped_lines=result.dropped,
        )
    return FsckResult(True, status.code, ())
