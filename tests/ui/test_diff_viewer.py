"""The diff viewer on two real plain builds of the same inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexlab.ui import DiffViewer

pytestmark = [pytest.mark.docker, pytest.mark.root]


@pytest.fixture(scope="module")
def viewer(two_plain_images: tuple[Path, Path]) -> DiffViewer:
    return DiffViewer.from_images(*two_plain_images)


def test_header_and_report(viewer: DiffViewer, two_plain_images: tuple[Path, Path]) -> None:
    assert not viewer.diff.identical_bytes  # plain builds: random UUID, hash seed, mount times
    assert str(two_plain_images[0]) in viewer.header.value
    assert "bytes differ" in viewer.header.value
    assert "nexlab diff" in viewer.report.value
    # Every cause the differ named is explained in its tab.
    for cause in viewer.diff.causes:
        assert cause in viewer.causes.value
    assert "fs-hash-seed" in viewer.diff.causes or "fs-uuid" in viewer.diff.causes


def test_kind_filter_and_mtime_only(viewer: DiffViewer) -> None:
    changes = viewer.diff.changes
    total = len(changes)
    mtime_only = int(changes["mtime_only"].sum())
    assert viewer.summary.value == f"{total - mtime_only} of {total} changed paths"
    viewer.include_mtime_only.value = True
    assert len(viewer.selection) == total
    viewer.kind.value = "mtime only"
    assert len(viewer.selection) == mtime_only
    assert viewer.selection["mtime_only"].all()
    viewer.kind.value = "added"
    assert (viewer.selection["change"] == "added").all()
    viewer.kind.value = "all"
    viewer.prefix.value = "/etc"
    assert all(p == "/etc" or p.startswith("/etc/") for p in viewer.selection["path"])
    assert list(viewer.selection["path"]) == sorted(viewer.selection["path"])


def test_identical_images(two_plain_images: tuple[Path, Path]) -> None:
    same = DiffViewer.from_images(two_plain_images[0], two_plain_images[0])
    assert same.diff.identical_bytes
    assert "bit-identical" in same.header.value
    assert "No changes match." in same.table.value
