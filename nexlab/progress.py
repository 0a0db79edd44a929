"""How long-running work reports what it does.

The core calls a ``Progress``; the terminal, the notebook widgets and plain
logging each implement it. The core never imports a UI: it only knows this
protocol.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger("nexlab")


@runtime_checkable
class Progress(Protocol):
    def step_started(self, step: str, description: str) -> None:
        """A named step (``mkfs``, ``populate``…) begins."""

    def step_finished(self, step: str, result: Any) -> None:
        """A step ended and returned ``result``."""

    def log_line(self, line: str) -> None:
        """One line of live output (a container's stdout, a tool's report)."""

    def fraction(self, done: float, text: str = "") -> None:
        """Overall progress in [0, 1]."""


class LoggingProgress:
    """The default: everything goes to the ``nexlab`` logger."""

    def step_started(self, step: str, description: str) -> None:
        log.info("%s: %s", step, description)

    def step_finished(self, step: str, result: Any) -> None:
        log.info("%s: done", step)

    def log_line(self, line: str) -> None:
        log.info("  %s", line)

    def fraction(self, done: float, text: str = "") -> None:
        log.debug("progress %.0f%% %s", done * 100, text)


def or_logging(progress: Progress | None) -> Progress:
    """``progress``, or the logging one when the caller gave none."""
    return progress if progress is not None else LoggingProgress()
