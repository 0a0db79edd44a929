"""``WidgetProgress``: the ``nexlab.progress.Progress`` protocol as notebook widgets.

A bar, a status line and a live log. The core calls it from the kernel's own
thread (populate streams the container's output while the cell or button
handler runs); ipywidgets sends each state change as a comm message right
away, so the page updates while the step is still running.
"""

from __future__ import annotations

import html
from collections import deque
from typing import Any

import ipywidgets as widgets

from nexlab.progress import ProgressBase

#: Lines kept in the live log: enough to read a failing setup, small enough that
#: each update (the whole text is sent) stays cheap.
LOG_LINES = 400


class WidgetProgress(ProgressBase):
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

    def step_failed(self, step: str, error: BaseException) -> None:
        self.failed(step)

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

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
