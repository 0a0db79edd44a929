"""``AuditExplorer``: filter and sort an audit's inventory, see where the space goes, read the findings.

The filtering is a plain function of the inventory DataFrame (``select``), so
it is testable without widgets; the widgets only collect a ``Filters`` and show
what ``select`` returns. The treemap follows the filter: it shows where the
selected paths' bytes are.
"""

from __future__ import annotations

import html
import posixpath
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nexlab import report
from nexlab.errors import NexlabError
from nexlab.report.document import Node
from nexlab.report.html_writer import table, treemap_svg
from nexlab.sizes import format_size, parse_size
from nexlab.ui.static import StaticFallback

if TYPE_CHECKING:
    import pandas as pd

    from nexlab.audit.audit import Audit

ANY = "(any)"
NO_PACKAGE = "(no package)"
SORTS = {
    "allocated, largest first": ("allocated", False),
    "size, largest first": ("size", False),
    "path": ("path", True),
    "mtime, newest first": ("mtime", False),
}
SHOWN_COLUMNS = ["path", "type", "mode", "uid", "gid", "size", "allocated", "package"]


@dataclass(frozen=True)
class Filters:
    prefix: str = "/"
    type: str = ANY
    owner: str = ANY  # "uid:gid"
    package: str = ANY
    min_size: int = 0
    sort: str = "allocated, largest first"


def select(inventory: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The rows of ``inventory`` that pass ``filters``, sorted as asked (ties by path)."""
    # The inventory is indexed by path; the selection has it as a column (the table shows it).
    frame = inventory.reset_index()
    prefix = filters.prefix.strip() or "/"
    if prefix != "/":
        base = "/" + prefix.strip("/")
        frame = frame[(frame["path"] == base) | frame["path"].str.startswith(base + "/")]
    if filters.type != ANY:
        frame = frame[frame["type"] == filters.type]
    if filters.owner != ANY:
        uid, gid = (int(part) for part in filters.owner.split(":"))
        frame = frame[(frame["uid"] == uid) & (frame["gid"] == gid)]
    if filters.package == NO_PACKAGE:
        frame = frame[frame["package"].isna()]
    elif filters.package != ANY:
        frame = frame[frame["package"] == filters.package]
    if filters.min_size:
        frame = frame[frame["size"] >= filters.min_size]
    column, ascending = SORTS[filters.sort]
    if column == "path":
        return frame.sort_values("path", kind="stable", ignore_index=True)
    return frame.sort_values([column, "path"], ascending=[ascending, True], kind="stable", ignore_index=True)


def space_tree(frame: pd.DataFrame, root: str = "/") -> list[Node]:
    """Allocated bytes of ``frame``'s files by the two directory levels below ``root`` (inodes counted once)."""
    base = "/" + root.strip("/")
    unique = frame[frame["type"] != "dir"].drop_duplicates("inode")
    top: dict[str, int] = defaultdict(int)
    below: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path, allocated in zip(unique["path"], unique["allocated"], strict=True):
        relative = posixpath.relpath(path, base) if path != base else posixpath.basename(path)
        parts = relative.split("/")
        first = parts[0] if len(parts) > 1 else "(files)"
        top[first] += int(allocated)
        if len(parts) > 2:
            below[first][parts[1]] += int(allocated)
        elif len(parts) == 2:
            below[first]["(files)"] += int(allocated)
    nodes = []
    for name in sorted(top):
        kids = [Node(k, v, title=posixpath.join(base, name, k)) for k, v in sorted(below[name].items())]
        nodes.append(Node(name, top[name], kids if len(kids) > 1 else [], title=posixpath.join(base, name)))
    return nodes


def _min_size(text: str) -> int:
    # parse_size refuses 0 (a filesystem size must be positive); here 0 means "no minimum".
    text = text.strip()
    return 0 if text in ("", "0") else parse_size(text)


def findings_html(audit: Audit) -> str:
    if not audit.findings:
        return "<p>No findings.</p>"
    rows = [
        (f.severity.value, f.code, f.message, f.fix, ", ".join(f.paths[:5]) + (" …" if len(f.paths) > 5 else ""))
        for f in sorted(audit.findings, key=lambda f: (-f.severity.rank, f.code))
    ]
    return table(["severity", "rule", "what", "fix", "paths"], rows)


class AuditExplorer(StaticFallback, widgets.VBox):
    """Filters above, then tabs: the matching paths, their treemap, the findings.

    Saved in a notebook, it reads as the audit's report where the live view cannot show.
    """

    def __init__(self, audit: Audit, *, rows: int = 50) -> None:
        self.audit = audit
        self.inventory = audit.inventory
        frame = self.inventory
        owners = sorted({(int(u), int(g)) for u, g in zip(frame["uid"], frame["gid"], strict=True)})
        packages = sorted(p.name for p in audit.packages)
        style = {"description_width": "6em"}
        self.prefix = widgets.Text(value="/", description="path prefix", style=style)
        self.type = widgets.Dropdown(options=[ANY, *sorted(set(frame["type"]))], description="type", style=style)
        self.owner = widgets.Dropdown(
            options=[ANY, *(f"{u}:{g}" for u, g in owners)], description="uid:gid", style=style
        )
        self.package = widgets.Dropdown(options=[ANY, NO_PACKAGE, *packages], description="package", style=style)
        self.min_size = widgets.Text(value="0", description="min size", placeholder="e.g. 1MiB", style=style)
        self.sort = widgets.Dropdown(options=list(SORTS), description="sort", style=style)
        self.rows = widgets.BoundedIntText(value=rows, min=1, max=10_000, description="rows", style=style)
        self.summary = widgets.HTML()
        self.error = widgets.HTML()
        self.table = widgets.HTML()
        self.treemap = widgets.HTML()
        self.findings = widgets.HTML(findings_html(audit))
        self.selection = frame
        tabs = widgets.Tab(children=[self.table, self.treemap, self.findings])
        for index, title in enumerate(("paths", "treemap", f"findings ({len(audit.findings)})")):
            tabs.set_title(index, title)
        self.tabs = tabs
        controls = widgets.VBox(
            [
                widgets.HBox([self.prefix, self.type, self.owner]),
                widgets.HBox([self.package, self.min_size, self.sort]),
                widgets.HBox([self.rows]),
            ]
        )
        super().__init__(
            [widgets.HTML(f"<b>{html.escape(str(audit.image))}</b>"), controls, self.error, self.summary, tabs]
        )
        for control in (self.prefix, self.type, self.owner, self.package, self.min_size, self.sort, self.rows):
            control.observe(self._update, names="value")
        self._update()

    def fallback_html(self) -> str:
        return report.html(self.audit, standalone=False)

    def fallback_text(self) -> str:
        audit = self.audit
        return (
            f"AuditExplorer: {audit.image} ({len(self.inventory)} paths, {len(audit.packages)} packages, "
            f"{len(audit.findings)} findings)"
        )

    def filters(self) -> Filters:
        return Filters(
            prefix=self.prefix.value,
            type=self.type.value,
            owner=self.owner.value,
            package=self.package.value,
            min_size=_min_size(self.min_size.value),
            sort=self.sort.value,
        )

    def _update(self, _change: Any = None) -> None:
        try:
            filters = self.filters()
        except NexlabError as exc:
            self.error.value = f"<div style='color:#b00020'>✘ {html.escape(str(exc))}</div>"
            return
        self.error.value = ""
        self.selection = select(self.inventory, filters)
        chosen = self.selection
        unique = chosen.drop_duplicates("inode")
        self.summary.value = (
            f"{len(chosen)} of {len(self.inventory)} paths · "
            f"{format_size(int(unique['size'].sum()))} apparent · "
            f"{format_size(int(unique['allocated'].sum()))} allocated"
        )
        shown = chosen.head(self.rows.value)[SHOWN_COLUMNS].copy()
        shown["mode"] = shown["mode"].map(lambda m: f"{int(m):04o}")
        self.table.value = shown.to_html(index=False, na_rep="", border=0, classes="nexlab-inventory")
        self.treemap.value = treemap_svg(
            space_tree(chosen, filters.prefix), width=900, height=360, title=f"allocated bytes under {filters.prefix}"
        )
