"""Charts of an audit or a diff with matplotlib: the largest packages, size by directory, a diff's deltas.

Each function returns a ``matplotlib.figure.Figure`` made without pyplot: no
global figure state, no GUI backend (it draws with Agg, so it works headless
and in CI), and Jupyter shows a returned figure as a PNG, which survives an
untrusted reopen and GitHub's viewer. Pass ``ax=`` to draw into your own axes
(the figure returned is then that axes' figure). ``fig.savefig("x.png")`` or
``.svg`` writes it.

    from nexlab.report import plots
    plots.largest_packages(nexlab.audit("rootfs.ext4"))
    plots.size_by_directory(audit, depth=2, top=15)
    plots.size_deltas(nexlab.diff("a.ext4", "b.ext4"), by="package")

Presentation only: the models never import this module (tests/test_architecture.py).
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nexlab.errors import InputError
from nexlab.sizes import format_size

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from nexlab.audit.audit import Audit
    from nexlab.diff.model import Diff

#: Bar colours: one for sizes, and growth / shrinkage for deltas (colour-blind safe pair).
SIZE_COLOUR = "#4c72b0"
GROW_COLOUR = "#c44e52"
SHRINK_COLOUR = "#55a868"
DEFAULT_TOP = 15


def largest_packages(audit: Audit, *, top: int = DEFAULT_TOP, ax: Axes | None = None) -> Figure:
    """The ``top`` packages by allocated bytes in the image, largest at the top."""
    packages = sorted(audit.packages, key=lambda p: (-p.size, p.name))[: _positive(top)]
    rows = [(p.name, p.size) for p in packages]
    return _bars(rows, title=f"largest packages of {audit.image.name}", xlabel="allocated", ax=ax)


def directory_sizes(audit: Audit, depth: int = 1) -> list[tuple[str, int]]:
    """Allocated bytes under each directory ``depth`` levels below ``/``, largest first, inodes counted once.

    A file above that depth counts for its own directory (``/etc/hostname`` is
    ``/etc`` at depth 2), so the rows add up to the allocated bytes of the image's files.
    """
    depth = _positive(depth)
    from nexlab.audit.budget import unique_inodes

    totals: dict[str, int] = defaultdict(int)
    # Each inode at its first path, read from the columns (no record per path).
    unique = unique_inodes(audit.files)
    dirs, kinds, allocated = unique.kind_codes("dir"), unique.type_column(), unique.column("allocated")
    for row in unique.rows():
        if kinds[row] in dirs:
            continue
        parts = posixpath.dirname(unique.path(row)).strip("/").split("/")
        key = "/" + "/".join(p for p in parts[:depth] if p)
        totals[key] += allocated[row]
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def size_by_directory(audit: Audit, *, depth: int = 1, top: int = DEFAULT_TOP, ax: Axes | None = None) -> Figure:
    """The ``top`` directories ``depth`` levels deep by allocated bytes (see ``directory_sizes``)."""
    rows = directory_sizes(audit, depth)[: _positive(top)]
    title = f"allocated bytes by directory (depth {depth}) of {audit.image.name}"
    return _bars(rows, title=title, xlabel="allocated", ax=ax)


def size_deltas(diff: Diff, *, by: str = "directory", top: int = DEFAULT_TOP, ax: Axes | None = None) -> Figure:
    """The ``top`` directories (``by="directory"``) or packages (``by="package"``) by |growth| from A to B."""
    records = {"directory": diff.directory_size_records, "package": diff.package_size_records}.get(by)
    if records is None:
        raise InputError(f"cannot plot size deltas by {by!r}: use 'directory' or 'package'")
    changed = sorted((r for r in records if r.delta), key=lambda r: (-abs(r.delta), r.name))[: _positive(top)]
    rows = [(r.name, r.delta) for r in changed]
    title = f"size change by {by}: {diff.a.name} → {diff.b.name}"
    return _bars(rows, title=title, xlabel="allocated bytes, B − A", ax=ax, signed=True)


def _positive(value: int) -> int:
    if value < 1:
        raise InputError(f"{value} must be 1 or more")
    return value


def _bars(rows: Sequence[tuple[str, int]], *, title: str, xlabel: str, ax: Axes | None, signed: bool = False) -> Figure:
    """Horizontal bars, first row at the top, each labelled with its size as a person reads it."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    if ax is None:
        figure = Figure(figsize=(8, 0.35 * max(len(rows), 3) + 1.2), layout="constrained")
        ax = figure.add_subplot()
    names = [name for name, _ in rows]
    values = [value for _, value in rows]
    colours = [(GROW_COLOUR if v > 0 else SHRINK_COLOUR) if signed else SIZE_COLOUR for v in values]
    bars = ax.barh(range(len(rows)), values, color=colours)
    ax.set_yticks(range(len(rows)), names)
    ax.invert_yaxis()
    labels = [("+" if signed and v > 0 else "-" if v < 0 else "") + format_size(abs(v)) for v in values]
    ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: format_size(x)))
    ax.margins(x=0.2)
    if signed:
        ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title if rows else f"{title}: nothing to show", fontsize=10)
    figure_of = ax.get_figure()
    assert figure_of is not None  # an axes made by add_subplot, or given, belongs to a figure
    return figure_of  # type: ignore[return-value]
