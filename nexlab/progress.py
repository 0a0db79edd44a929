"""How long-running work reports what it does.

The core calls a ``Progress``; the terminal, the notebook widgets and plain
logging each implement it. The core never imports a UI: it only knows this
protocol.

The core opens a step with ``with progress.step("mkfs", "mkfs.ext4") as step:``:
the step is announced on entry, finished on a normal exit (with what
``step.done(result)`` recorded, if anything) and marked failed when the block
raises, so no step is ever left open or finished twice. The implementations
inherit ``step()`` (and a ``step_failed`` that shows nothing) from
``ProgressBase`` and provide the four callbacks; ``or_logging()`` gives an object
that has only those four the rest.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any, Protocol, TypeVar, runtime_checkable

log = logging.getLogger("nexlab")

T = TypeVar("T")


class Step:
    """The open step of a ``with progress.step(...)`` block; ``done`` records its result."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.result: Any = None

    def done(self, result: T) -> T:
        """Record ``result`` as what the step returned (shown when the block ends); returns it."""
        self.result = result
        return result


@runtime_checkable
class Progress(Protocol):
    def step(self, step: str, description: str = "") -> contextlib.AbstractContextManager[Step]:
        """A named step (``mkfs``, ``populate``…) for the duration of a ``with`` block."""

    def step_started(self, step: str, description: str) -> None:
        """A named step begins."""

    def step_finished(self, step: str, result: Any) -> None:
        """A step ended and returned ``result``."""

    def step_failed(self, step: str, error: BaseException) -> None:
        """A step's block raised ``error``, which then propagates."""

    def log_line(self, line: str) -> None:
        """One line of live output (a container's stdout, a tool's report)."""

    def fraction(self, done: float, text: str = "") -> None:
        """Overall progress in [0, 1]."""


class ProgressBase:
    """``step()`` on top of the callbacks: what every implementation inherits."""

    @contextlib.contextmanager
    def step(self, step: str, description: str = "") -> Iterator[Step]:
        self.step_started(step, description)
        current = Step(step)
        try:
            yield current
        except BaseException as exc:
            # Ctrl-C included: a widget must not show the step as still running.
            self.step_failed(step, exc)
            raise
        self.step_finished(step, current.result)

    def step_started(self, step: str, description: str) -> None:
        raise NotImplementedError

    def step_finished(self, step: str, result: Any) -> None:
        raise NotImplementedError

    def step_failed(self, step: str, error: BaseException) -> None:
        """The step's block raised ``error`` (which then propagates); by default nothing is shown."""

    def log_line(self, line: str) -> None:
        raise NotImplementedError

    def fraction(self, done: float, text: str = "") -> None:
        raise NotImplementedError


class LoggingProgress(ProgressBase):
    """The default: everything goes to the ``nexlab`` logger."""

    def step_started(self, step: str, description: str) -> None:
        log.info("%s: %s", step, description)

    def step_finished(self, step: str, result: Any) -> None:
        log.info("%s: done", step)

    def step_failed(self, step: str, error: BaseException) -> None:
        log.info("%s: failed (%s)", step, type(error).__name__)

    def log_line(self, line: str) -> None:
        log.info("  %s", line)

    def fraction(self, done: float, text: str = "") -> None:
        log.debug("progress %.0f%% %s", done * 100, text)


class _Adapted(ProgressBase):
    """A caller's own progress object that has only the four callbacks, given ``step()``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def step_started(self, step: str, description: str) -> None:
        self.inner.step_started(step, description)

    def step_finished(self, step: str, result: Any) -> None:
        self.inner.step_finished(step, result)

    def step_failed(self, step: str, error: BaseException) -> None:
        failed = getattr(self.inner, "step_failed", None)
        if failed is not None:
            failed(step, error)

    def log_line(self, line: str) -> None:
        self.inner.log_line(line)

    def fraction(self, done: float, text: str = "") -> None:
        self.inner.fraction(done, text)


def or_logging(progress: Any) -> Progress:
    """``progress``, ``LoggingProgress`` for None, and an object without ``step()`` adapted."""
    if progress is None:
        return LoggingProgress()
    if callable(getattr(progress, "step", None)):
        return progress
    return _Adapted(progress)
