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

Who shows a build when the caller passes no progress: ``default_progress()``.
In a notebook (an IPython kernel) it is the widget that ``nexlab.ui`` registers
under the ``nexlab.progress`` entry point ``notebook`` (the core does not import
the UI: it loads whatever is registered there), on a terminal (stderr is a tty)
a bar on stderr, otherwise the ``nexlab`` logger. ``NEXLAB_PROGRESS`` =
``widget``, ``bar`` or ``log`` forces one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, Protocol, TextIO, TypeVar, runtime_checkable

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


class TerminalProgress(ProgressBase):
    """One line per step with its time, container output indented; on a TTY the current
    step also shows a bar that redraws in place (at most ten times a second). In CI logs
    (not a TTY) everything is plain lines."""

    #: Seconds between two redraws of the bar.
    REDRAW = 0.1

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False, show_log: bool = True) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.quiet = quiet
        self.show_log = show_log
        self.tty = _isatty(self.stream)
        self._started = 0.0
        self._bar_shown = False
        self._drawn = 0.0

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
        # setup.sh's "nexlab-error: ..." ends the container, and the build's error quotes it:
        # on a terminal it is said once, as the one error line.
        if self.show_log and not line.startswith("nexlab-error:"):
            self._write(f"    | {line}")

    def fraction(self, done: float, text: str = "") -> None:
        if self.quiet or not self.tty:
            return
        now = time.monotonic()
        if done < 1.0 and now - self._drawn < self.REDRAW:
            return
        self._drawn = now
        done = min(max(done, 0.0), 1.0)
        width = 30
        filled = int(done * width)
        self.stream.write(f"\r\033[K    [{'#' * filled}{'.' * (width - filled)}] {done * 100:3.0f}% {text}")
        self.stream.flush()
        self._bar_shown = True


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


#: The entry-point group where a UI registers the progress it shows in a notebook.
ENTRY_POINTS = "nexlab.progress"


def in_notebook() -> bool:
    """True when running in an IPython kernel (Jupyter, nbclient), not a terminal IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _registered(name: str) -> Progress | None:
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINTS, name=name):
        try:
            made = point.load()()
        except Exception:  # a broken UI must not break the build: it falls back to lines
            log.warning("the %s progress (%s) could not be made", name, point.value, exc_info=True)
            continue
        return or_logging(made)
    return None


def default_progress() -> Progress:
    """What a build shows when the caller passes no progress: a widget in a notebook, a bar
    on a terminal, the ``nexlab`` logger otherwise (``NEXLAB_PROGRESS`` forces one)."""
    forced = os.environ.get("NEXLAB_PROGRESS", "").strip().lower()
    if forced == "log":
        return LoggingProgress()
    if forced == "widget" or (not forced and in_notebook()):
        shown = _registered("notebook")
        if shown is not None:
            return shown
    if forced == "bar" or (not forced and _isatty(sys.stderr)):
        return TerminalProgress(sys.stderr)
    return LoggingProgress()


def or_default(progress: Any) -> Progress:
    """``progress`` (adapted like ``or_logging``), or ``default_progress()`` for None."""
    return default_progress() if progress is None else or_logging(progress)
