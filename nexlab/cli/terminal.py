"""Progress on a terminal: one line per step with its time, container output indented.

On a TTY the current step also shows a progress bar that redraws in place; in
CI logs (not a TTY) everything is plain lines.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from nexlab.progress import ProgressBase


class TerminalProgress(ProgressBase):
    def __init__(self, stream: TextIO = sys.stderr, *, quiet: bool = False, show_log: bool = True) -> None:
        self.stream = stream
        self.quiet = quiet
        self.show_log = show_log
        self.tty = stream.isatty()
        self._started = 0.0
        self._bar_shown = False

    def _write(self, text: str) -> None:
        if self.quiet:
            return
        if self._bar_shown:
            self.stream.write("\r\033[K")
            self._bar_shown = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def step_started(self, step: str, description: str) -> None:
        self._started = time.monotonic()
        self._write(f"==> {step}: {description}")

    def step_finished(self, step: str, result: Any) -> None:
        seconds = getattr(result, "seconds", time.monotonic() - self._started)
        self._write(f"    {step} done in {seconds:.2f} s")

    def log_line(self, line: str) -> None:
        if self.show_log:
            self._write(f"    | {line}")

    def fraction(self, done: float, text: str = "") -> None:
        if self.quiet or not self.tty:
            return
        width = 30
        filled = int(done * width)
        self.stream.write(f"\r\033[K    [{'#' * filled}{'.' * (width - filled)}] {done * 100:3.0f}% {text}")
        self.stream.flush()
        self._bar_shown = True


class StepsOnly(ProgressBase):
    """Forwards only the named steps (and their progress bar) to another progress.

    ``audit`` and ``diff`` print nothing while they read a plain image; a
    compressed one is decompressed first, which can take a while, so that step
    is shown.
    """

    def __init__(self, inner: TerminalProgress, steps: frozenset[str]) -> None:
        self.inner = inner
        self.steps = steps
        self._current = ""

    def step_started(self, step: str, description: str) -> None:
        self._current = step
        if step in self.steps:
            self.inner.step_started(step, description)

    def step_finished(self, step: str, result: Any) -> None:
        if step in self.steps:
            self.inner.step_finished(step, result)
        self._current = ""

    def step_failed(self, step: str, error: BaseException) -> None:
        if step in self.steps:
            self.inner.step_failed(step, error)
        self._current = ""

    def log_line(self, line: str) -> None:
        if self._current in self.steps:
            self.inner.log_line(line)

    def fraction(self, done: float, text: str = "") -> None:
        if self._current in self.steps:
            self.inner.fraction(done, text)
