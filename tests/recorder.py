"""A real ``Progress`` for tests: it remembers the steps, log lines and fractions it was told."""

from __future__ import annotations

from typing import Any

from nexlab.progress import ProgressBase


class Recorder(ProgressBase):
    """A Progress that keeps everything it is told."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.lines: list[str] = []
        self.fractions: list[float] = []
        #: (step running, fraction, text) for every fraction.
        self.bar: list[tuple[str, float, str]] = []
        self._current = ""
        self.finished: list[str] = []
        self.failed: list[str] = []

    def step_started(self, step: str, description: str) -> None:
        self.steps.append(step)
        self._current = step

    def step_finished(self, step: str, result: Any) -> None:
        self.finished.append(step)

    def step_failed(self, step: str, error: BaseException) -> None:
        self.failed.append(step)

    def log_line(self, line: str) -> None:
        self.lines.append(line)

    def fraction(self, done: float, text: str = "") -> None:
        self.fractions.append(done)
        self.bar.append((self._current, done, text))
