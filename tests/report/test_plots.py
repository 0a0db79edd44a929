"""The matplotlib charts, on a real audit and a real diff of images made with ``mkfs.ext4 -d``.

Each chart's bars are read back from the figure and checked against the data
(a chart that drew the wrong numbers would still "render"), then written as
PNG and SVG, headless, without pyplot.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from nexlab.errors import InputError
from nexlab.report import plots
from tests.report.results import Results


def _bars(figure: Figure) -> list[tuple[str, float]]:
    (ax,) = figure.axes
    names = [label.get_text() for label in ax.get_yticklabels()]
    widths = [patch.get_width() for patch in ax.patches]
    return list(zip(names, widths, strict=True))


def test_largest_packages_are_the_audit_s_packages_by_size(results: Results, tmp_path: Path) -> None:
    audit = results.audit
    figure = plots.largest_packages(audit)
    expected = sorted(((p.name, p.size) for p in audit.packages), key=lambda row: (-row[1], row[0]))
    assert _bars(figure) == expected
    assert audit.packages_frame["size"].tolist() == [size for _, size in expected]
    png, svg = tmp_path / "packages.png", tmp_path / "packages.svg"
    figure.savefig(png)
    figure.savefig(svg)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "<svg" in svg.read_text() and "musl" in svg.read_text()


def test_size_by_directory_adds_up_to_the_inventory(results: Results) -> None:
    audit = results.audit
    frame = audit.inventory
    files = frame[frame["type"] != "dir"].drop_duplicates("inode")
    for depth in (1, 2):
        rows = plots.directory_sizes(audit, depth)
        assert sum(size for _, size in rows) == int(files["allocated"].sum())
        assert [size for _, size in rows] == sorted((size for _, size in rows), reverse=True)
        # The same numbers from pandas: group the files by their first `depth` directory names.
        keys = ["/" + "/".join(p for p in path.strip("/").split("/")[:-1][:depth] if p) for path in files.index]
        by_pandas = files.assign(key=keys).groupby("key")["allocated"].sum()
        assert dict(rows) == {k: int(v) for k, v in by_pandas.items()}
    top = plots.size_by_directory(audit, depth=2, top=3)
    assert _bars(top) == [(name, float(size)) for name, size in plots.directory_sizes(audit, 2)[:3]]


def test_size_deltas_show_growth_and_shrinkage(results: Results) -> None:
    diff = results.diff
    figure = plots.size_deltas(diff)
    expected = sorted(((r.name, r.delta) for r in diff.directory_size_records if r.delta), key=lambda x: -abs(x[1]))
    assert sorted(_bars(figure)) == sorted((n, float(d)) for n, d in expected)
    assert {d > 0 for _, d in expected} == {True, False}, "the test pair both grows and shrinks directories"
    colours = {patch.get_width() > 0: patch.get_facecolor() for patch in figure.axes[0].patches}
    assert colours[True] != colours[False]
    by_package = plots.size_deltas(diff, by="package")
    assert [name for name, _ in _bars(by_package)] == [r.name for r in diff.package_size_records if r.delta]
    # Identical content: nothing to draw, and the title says so.
    empty = plots.size_deltas(results.same)
    assert _bars(empty) == [] and "nothing to show" in empty.axes[0].get_title()


def test_bad_arguments_are_typed_errors(results: Results) -> None:
    with pytest.raises(InputError, match="use 'directory' or 'package'"):
        plots.size_deltas(results.diff, by="file")
    with pytest.raises(InputError, match="must be 1 or more"):
        plots.largest_packages(results.audit, top=0)


def test_draws_into_given_axes(results: Results) -> None:
    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert plots.largest_packages(results.audit, ax=left) is figure
    assert plots.size_deltas(results.diff, ax=right) is figure
    assert len(left.patches) == len(results.audit.packages)


def test_headless_without_pyplot(results: Results, tmp_path: Path) -> None:
    code = (
        "import sys, nexlab\n"
        "from nexlab.report import plots\n"
        f"plots.size_by_directory(nexlab.audit({str(results.diff.b)!r})).savefig({str(tmp_path / 'd.png')!r})\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"
    assert (tmp_path / "d.png").read_bytes().startswith(b"\x89PNG")
