"""``--deep``: diffoscope on the files whose content differs.

diffoscope is GPL, so it runs only as a program. It gets the changed files
extracted from both images into one temporary directory (never the images
themselves: without libguestfs it would hexdump gigabytes), with its report
size, diff block and time limits set. A missing diffoscope is a note naming the
Debian package, not an error.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexlab import tempdirs
from nexlab.diff.model import Change, DeepResult
from nexlab.errors import CommandError, ToolMissingError
from nexlab.run import run

if TYPE_CHECKING:
    from nexlab.image import Entry

#: At most this many files go to diffoscope: beyond that its report is unreadable anyway.
MAX_FILES = 200
MAX_REPORT_BYTES = 2 * 1024 * 1024
MAX_DIFF_BLOCK_LINES = 200
TIMEOUT_SECONDS = 120
#: C.UTF-8 is built into glibc, so it exists on every host.
UTF8_LOCALE = {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
_SURROGATE = re.compile("[\udc80-\udcff]")


def _utf8_named(entry: Entry) -> Entry:
    """``entry`` with each byte of its path that is not UTF-8 written as ``\\xNN``.

    diffoscope writes its reports as UTF-8 and dies on such a byte; the escaped
    name is the one nexlab's own reports show.
    """
    if not _SURROGATE.search(entry.path):
        return entry
    return dataclasses.replace(entry, path=_SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", entry.path))


def content_changes(changes: Sequence[Change]) -> list[Change]:
    """Modified regular files whose bytes differ (sha256 or size), in path order."""
    return [c for c in changes if c.change == "modified" and "sha256" in c.fields]


def run_diffoscope(
    fs_a: Any,
    fs_b: Any,
    entries_a: dict[str, Entry],
    entries_b: dict[str, Entry],
    changes: Sequence[Change],
    *,
    max_files: int = MAX_FILES,
    timeout: int = TIMEOUT_SECONDS,
) -> DeepResult:
    from nexlab.image.extract import extract

    start = time.monotonic()
    selected = content_changes(changes)
    if not selected:
        return DeepResult(files=0, note="no file content differs: nothing for diffoscope to compare")
    note = ""
    if len(selected) > max_files:
        note = f"diffoscope compared the first {max_files} of {len(selected)} changed files"
        selected = selected[:max_files]
    with tempdirs.directory("deep") as workdir:
        root = Path(workdir)
        for side, fs, entries in (("a", fs_a, entries_a), ("b", fs_b, entries_b)):
            (root / side).mkdir()
            extract(fs, [_utf8_named(entries[c.path]) for c in selected], root / side)
        text_out, html_out = root / "report.txt", root / "report.html"
        argv = [
            "diffoscope",
            "--no-progress",
            "--text",
            str(text_out),
            "--html",
            str(html_out),
            "--max-report-size",
            str(MAX_REPORT_BYTES),
            "--max-diff-block-lines",
            str(MAX_DIFF_BLOCK_LINES),
            "--timeout",
            str(timeout),
            "--exclude-directory-metadata",
            "recursive",
            str(root / "a"),
            str(root / "b"),
        ]
        try:
            # diffoscope exits 1 when it found differences, which is the expected case.
            # A name that is not UTF-8 makes diffoscope exit 2 with no report at all
            # ("unable to print Unicode"), in any locale: such names were escaped on
            # extraction (``_utf8_named``). It also gets a UTF-8 locale rather than
            # run()'s C, so that the tools it runs print non-ASCII text as text.
            run(argv, ok=(0, 1), timeout=timeout + 60, cwd=root, env=UTF8_LOCALE)
        except ToolMissingError as exc:
            return DeepResult(
                files=len(selected), note=f"diffoscope is not installed (apt-get install {exc.package or 'diffoscope'})"
            )
        except CommandError as exc:
            if exc.timeout is not None:
                return DeepResult(files=len(selected), note=f"diffoscope did not finish: {exc}")
            tail = " ".join(exc.stderr.strip().splitlines()[-2:])
            return DeepResult(files=len(selected), note=f"diffoscope failed with status {exc.returncode}: {tail}")
        text = text_out.read_text(encoding="utf-8", errors="replace") if text_out.exists() else ""
        html = html_out.read_text(encoding="utf-8", errors="replace") if html_out.exists() else ""
    return DeepResult(files=len(selected), text=text, html=html, note=note, seconds=time.monotonic() - start)
