"""Progress on a terminal: ``TerminalProgress`` (in ``nexlab.progress``, where a library build
run from a terminal finds it too) and ``StepsOnly``, which shows some steps of it.
"""

from __future__ import annotations

from typing import Any

from nexlab.progress import ProgressBase, TerminalProgress

__all__ = ["StepsOnly", "TerminalProgress"]


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
