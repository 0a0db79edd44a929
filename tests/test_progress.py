"""``with progress.step(...)``: announced, finished with its result, or marked failed; never left open."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from nexlab.cli.terminal import StepsOnly, TerminalProgress
from nexlab.progress import Progress, or_logging
from tests.recorder import Recorder


def test_a_step_finishes_with_what_done_recorded() -> None:
    recorder = Recorder()
    with recorder.step("mkfs", "mkfs.ext4") as step:
        assert step.done(42) == 42
    with recorder.step("mount", "loop device"):
        pass
    assert recorder.steps == ["mkfs", "mount"] and recorder.finished == ["mkfs", "mount"] and recorder.failed == []


def test_a_step_whose_block_raises_is_failed_not_finished() -> None:
    recorder = Recorder()
    with pytest.raises(KeyboardInterrupt), recorder.step("populate", "export"):
        raise KeyboardInterrupt
    with pytest.raises(ValueError), recorder.step("mkfs", "mkfs.ext4"):
        raise ValueError("no space")
    assert recorder.failed == ["populate", "mkfs"] and recorder.finished == []


class _FourCallbacks:
    """A caller's own progress written against the old protocol: only the four callbacks."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def step_started(self, step: str, description: str) -> None:
        self.events.append(("started", step))

    def step_finished(self, step: str, result: Any) -> None:
        self.events.append(("finished", result))

    def log_line(self, line: str) -> None:
        self.events.append(("line", line))

    def fraction(self, done: float, text: str = "") -> None:
        self.events.append(("fraction", done))


def test_resolve_gives_an_old_style_progress_its_steps() -> None:
    own = _FourCallbacks()
    progress: Progress = or_logging(own)
    with progress.step("read", "walk") as step:
        progress.log_line("x")
        step.done("result")
    with pytest.raises(RuntimeError), progress.step("hash"):
        raise RuntimeError
    assert own.events == [("started", "read"), ("line", "x"), ("finished", "result"), ("started", "hash")]
    assert isinstance(or_logging(None), Progress)


def test_the_terminal_prints_what_it_printed_for_the_hand_paired_calls() -> None:
    stream = io.StringIO()
    terminal = TerminalProgress(stream)
    with terminal.step("mkfs", "mkfs.ext4") as step:
        terminal.log_line("mke2fs 1.47.0")
        step.done(type("R", (), {"seconds": 0.25})())
    with pytest.raises(ValueError), terminal.step("mount", "loop device"):
        raise ValueError
    assert (
        stream.getvalue()
        == "==> mkfs: mkfs.ext4\n    | mke2fs 1.47.0\n    mkfs done in 0.25 s\n==> mount: loop device\n"
    )


def test_steps_only_forwards_the_failure_of_a_shown_step_and_closes_it() -> None:
    stream = io.StringIO()
    inner = TerminalProgress(stream)
    only = StepsOnly(inner, frozenset({"decompress"}))
    with pytest.raises(OSError), only.step("decompress", "gzip"):
        raise OSError
    only.log_line("after the step: not shown")
    with only.step("read", "walk"):
        only.log_line("not shown either")
    assert stream.getvalue() == "==> decompress: gzip\n"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_redraws_in_place_on_a_tty_at_most_ten_times_a_second() -> None:
    stream = _Tty()
    terminal = TerminalProgress(stream)
    with terminal.step("compress", "gzip rootfs.ext4.gz"):
        for done in range(1, 1001):
            terminal.fraction(done / 1000, f"{done} of 1000 MiB")
    text = stream.getvalue()
    bars = text.count("\r\033[K    [")
    assert 1 <= bars < 100, bars  # a thousand calls in well under ten seconds
    assert "[##############################] 100% 1000 of 1000 MiB" in text  # the end is always drawn
    assert re.search(r"1000 of 1000 MiB\r\033\[K    compress done in \d+\.\d\d s\n$", text)  # bar cleared first


def test_the_default_progress_is_a_bar_on_a_terminal_and_the_logger_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nexlab.progress import LoggingProgress, default_progress, in_notebook

    monkeypatch.delenv("NEXLAB_PROGRESS", raising=False)
    assert not in_notebook()  # pytest is no kernel
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert isinstance(default_progress(), LoggingProgress)
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    shown = default_progress()
    assert isinstance(shown, TerminalProgress) and shown.stream is tty
    monkeypatch.setenv("NEXLAB_PROGRESS", "log")
    assert isinstance(default_progress(), LoggingProgress)


def test_the_notebook_progress_is_found_through_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import entry_points

    from nexlab.progress import ENTRY_POINTS, default_progress
    from nexlab.ui.progress import WidgetProgress, notebook_progress

    (point,) = entry_points(group=ENTRY_POINTS, name="notebook")
    assert point.load() is notebook_progress
    # Forced outside a kernel, the widget is made (and displayed to stdout as text).
    monkeypatch.setenv("NEXLAB_PROGRESS", "widget")
    assert isinstance(default_progress(), WidgetProgress)
