"""``WidgetProgress``: the ``nexlab.progress.Progress`` protocol as notebook widgets.

A bar, a status line and a live log. The core calls it from the kernel's own
thread (populate streams the container's output while the cell or button
handler runs); ipywidgets sends each state change as a comm message right
away, so the page updates while the step is still running.

``notebook_progress()`` is what a build shows in a notebook when it is given no
progress (registered as the ``nexlab.progress`` entry point ``notebook``): a
``WidgetProgress``, displayed. Its bundle carries the bar, status and log as
static HTML too, refreshed when a step ends (``StaticFallback``).
"""

from __future__ import annotations

import html
from collections import deque
from typing import Any

import ipywidgets as widgets

from nexlab.progress import ProgressBase
from nexlab.ui.static import StaticFallback, fallback

#: Lines kept in the live log: enough to read a failing setup, small enough that
#: each update (the whole text is sent) stays cheap.
LOG_LINES = 400


class WidgetProgress(StaticFallback, ProgressBase):
    """A ``Progress`` that shows itself: put ``.widget`` in a layout, or display the object."""

    def __init__(self, *, log_lines: int = LOG_LINES) -> None:
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description="", layout={"width": "60%"})
        self.status = widgets.HTML(value="")
        self.log = widgets.Textarea(
            value="",
            disabled=True,
            placeholder="container output appears here while a step runs",
            layout={"width": "100%", "height": "12em"},
        )
        self.lines: deque[str] = deque(maxlen=log_lines)
        #: The step running now (the name shown before a fraction's text).
        self.current: str | None = None
        self.widget = widgets.VBox([widgets.HBox([self.bar, self.status]), self.log])

    # -- the Progress protocol ------------------------------------------------
    def step_started(self, step: str, description: str) -> None:
        self.current = step
        self.bar.value = 0.0
        self.bar.bar_style = "info"
        self.bar.description = step
        self.status.value = f"<span>{html.escape(step)}: {html.escape(description)}…</span>"

    def step_finished(self, step: str, result: Any) -> None:
        self.bar.value = 1.0
        self.bar.bar_style = "success"
        seconds = getattr(result, "seconds", None)
        timing = f" in {seconds:.2f} s" if isinstance(seconds, int | float) else ""
        self.status.value = f"<span>✔ {html.escape(step)}{timing}</span>"
        self.refresh_fallback()

    def step_failed(self, step: str, error: BaseException) -> None:
        self.failed(step)
        self.refresh_fallback()

    def log_line(self, line: str) -> None:
        self.lines.append(line)
        self.log.value = "\n".join(self.lines)

    def fraction(self, done: float, text: str = "") -> None:
        self.bar.value = min(max(done, 0.0), 1.0)
        if text:
            prefix = f"{html.escape(self.current)}: " if self.current else ""
            self.status.value = f"<span>{prefix}{html.escape(text)}</span>"

    # -- for the panel --------------------------------------------------------
    def failed(self, step: str) -> None:
        self.bar.bar_style = "danger"
        self.status.value = f"<span>✘ {html.escape(step)}</span>"

    def clear(self) -> None:
        """Back to an empty bar and log (a new build starts)."""
        self.current = None
        self.bar.value = 0.0
        self.bar.bar_style = ""
        self.bar.description = ""
        self.status.value = ""
        self.lines.clear()
        self.log.value = ""

    # -- display ----------------------------------------------------------------
    def _live_bundle(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = self.widget._repr_mimebundle_(**kwargs)
        return bundle

    def fallback_html(self) -> str:
        return fallback(self.widget)

    def fallback_text(self) -> str:
        step = self.current or "no step yet"
        return f"WidgetProgress: {step} {self.bar.value:.0%}"


def notebook_progress() -> WidgetProgress:
    """A ``WidgetProgress``, displayed in the running cell: a build's default in a notebook."""
    from IPython.display import display

    progress = WidgetProgress()
    display(progress)
    return progress
