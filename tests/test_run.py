"""``run_bounded``: a program's time and kept output are bounded, and nothing it started survives."""

from __future__ import annotations

import os
import time
from pathlib import Path

from nexlab.run import run_bounded


def test_keeps_the_first_and_last_lines_and_counts_the_rest() -> None:
    result = run_bounded(["seq", "1", "100000"], timeout=60, keep_head=3, keep_tail=2)
    assert result.returncode == 0 and result.finished
    assert result.head == ("1", "2", "3") and result.tail == ("99999", "100000")
    assert result.dropped == 100000 - 5
    nothing = run_bounded(["seq", "1", "10"], timeout=60, keep_head=0, keep_tail=0)
    assert nothing.lines == () and nothing.dropped == 10


def test_stderr_is_kept_with_stdout() -> None:
    result = run_bounded(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=60)
    assert result.returncode == 3 and sorted(result.lines) == ["err", "out"]


def test_a_program_past_its_time_is_killed_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = run_bounded(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; echo started; wait"], timeout=1)
    assert time.monotonic() - started < 30
    assert result.returncode is None and not result.finished and result.lines == ("started",)
    child = int(pidfile.read_text())
    # The background child was in the same process group: it is gone too (reaped by init).
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"child {child} still runs")


def test_endless_output_keeps_only_the_bounds() -> None:
    # What a looping e2fsck does: print without end. Memory holds only the kept lines.
    result = run_bounded(["yes", "Restarting e2fsck from the beginning..."], timeout=2, keep_head=10, keep_tail=5)
    assert not result.finished
    assert len(result.head) == 10 and len(result.tail) == 5
    assert result.dropped > 1000
