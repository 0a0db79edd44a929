"""``DiffViewer``: what differs between two images, filtered by kind of change and path.

Tabs: the changed paths (filterable), size by directory and by package, the
known causes, and the full report (the presenter's HTML, as ``_repr_html_``
shows it). ``DiffViewer.from_images(a, b)`` runs ``nexlab.diff`` first.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nexlab import report
from nexlab.report.html_writer import table
from nexlab.sizes import format_size
from nexlab.ui.static import StaticFallback

if TYPE_CHECKING:
    import pandas as pd

    from nexlab.diff.model import Diff

KINDS = ("all", "added", "removed", "modified", "mtime only")


@dataclass(frozen=True)
class DiffFilters:
    kind: str = "all"
    prefix: str = "/"
    #: mtime-only changes are noise in most plain builds: hidden unless asked for.
    include_mtime_only: bool = False


def select_changes(changes: pd.DataFrame, filters: DiffFilters) -> pd.DataFrame:
    """Rows of ``Diff.changes`` that pass ``filters``, sorted by path."""
    frame = changes
    if frame.empty:
        return frame.reset_index(drop=True)
    if filters.kind == "mtime only":
        frame = frame[frame["mtime_only"]]
    else:
        if not filters.include_mtime_only:
            frame = frame[~frame["mtime_only"]]
        if filters.kind != "all":
            frame = frame[frame["change"] == filters.kind]
    prefix = filters.prefix.strip() or "/"
    if prefix != "/":
        base = "/" + prefix.strip("/")
        frame = frame[(frame["path"] == base) | frame["path"].str.startswith(base + "/")]
    return frame.sort_values("path", kind="stable", ignore_index=True)


def _size_rows(frame: pd.DataFrame, label: str, limit: int = 30) -> str:
    if frame.empty:
        return "<p>No size differences.</p>"
    records = frame.to_dict("records")
    changed = [r for r in records if r["a"] != r["b"]]
    changed.sort(key=lambda r: (-abs(int(r["b"]) - int(r["a"])), str(r[label])))
    rows = [
        (r[label], format_size(int(r["a"])), format_size(int(r["b"])), f"{int(r['b']) - int(r['a']):+,}")
        for r in changed[:limit]
    ]
    if not rows:
        return "<p>No size differences.</p>"
    return table([label, "A", "B", "Δ bytes"], rows, numeric=(1, 2, 3))


class DiffViewer(StaticFallback, widgets.VBox):
    """Verdict and counts above; tabs for changes, sizes, causes and the full report.

    Saved in a notebook, it reads as the diff's report where the live view cannot show.
    """

    def __init__(self, diff: Diff, *, rows: int = 100) -> None:
        self.diff = diff
        counts = diff.counts()
        style = {"description_width": "6em"}
        self.kind = widgets.Dropdown(options=list(KINDS), value="all", description="change", style=style)
        self.prefix = widgets.Text(value="/", description="path prefix", style=style)
        self.include_mtime_only = widgets.Checkbox(value=False, description="include mtime-only", indent=False)
        self.rows = widgets.BoundedIntText(value=rows, min=1, max=100_000, description="rows", style=style)
        self.summary = widgets.HTML()
        self.table = widgets.HTML()
        self.sizes = widgets.HTML(
            "<h4>by directory</h4>"
            + _size_rows(diff.size_by_directory, "directory")
            + "<h4>by package</h4>"
            + _size_rows(diff.size_by_package, "package")
        )
        causes = sorted(diff.causes.values(), key=lambda c: c.id)
        self.causes = widgets.HTML(
            table(["cause", "why", "fix"], [(c.id, c.explanation, c.fix) for c in causes])
            if causes
            else "<p>No known causes apply.</p>"
        )
        self._report_html = report.html(diff, standalone=False)
        self.report = widgets.HTML(self._report_html)
        self.selection = diff.changes
        titles = ("changes", "sizes", f"causes ({len(causes)})", "report")
        self.tabs = widgets.Tab(children=[self.table, self.sizes, self.causes, self.report])
        for index, title in enumerate(titles):
            self.tabs.set_title(index, title)
        identical = "bit-identical" if diff.identical_bytes else "bytes differ"
        header = (
            f"<b>A</b> <code>{html.escape(str(diff.a))}</code> · <b>B</b> <code>{html.escape(str(diff.b))}</code>"
            f"<br>{identical}; {counts['added']} added, {counts['removed']} removed, "
            f"{counts['modified']} modified, {counts['mtime_only']} mtime only"
        )
        self.header = widgets.HTML(header)
        super().__init__(
            [
                self.header,
                widgets.HBox([self.kind, self.prefix, self.include_mtime_only, self.rows]),
                self.summary,
                self.tabs,
            ]
        )
        for control in (self.kind, self.prefix, self.include_mtime_only, self.rows):
            control.observe(self._update, names="value")
        self._update()

    def fallback_html(self) -> str:
        return self._report_html

    def fallback_text(self) -> str:
        counts = self.diff.counts()
        return (
            f"DiffViewer: {self.diff.a} vs {self.diff.b} ({counts['added']} added, {counts['removed']} removed, "
            f"{counts['modified']} modified, {counts['mtime_only']} mtime only)"
        )

    @classmethod
    def from_images(cls, a: str | os.PathLike[str], b: str | os.PathLike[str], **options: Any) -> DiffViewer:
        """Compare two image files with ``nexlab.diff`` (keyword options go to it) and view the result."""
        from nexlab.diff import diff

        return cls(diff(a, b, **options))

    def filters(self) -> DiffFilters:
        return DiffFilters(
            kind=self.kind.value, prefix=self.prefix.value, include_mtime_only=self.include_mtime_only.value
        )

    def _update(self, _change: Any = None) -> None:
        self.selection = select_changes(self.diff.changes, self.filters())
        total = len(self.diff.changes)
        self.summary.value = f"{len(self.selection)} of {total} changed paths"
        shown = self.selection.head(self.rows.value)
        if shown.empty:
            self.table.value = "<p>No changes match.</p>"
        else:
            self.table.value = shown.to_html(index=False, na_rep="", border=0, classes="nexlab-changes")
