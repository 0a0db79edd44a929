"""The audit explorer on a real built image: each filter narrows the table, the treemap and the counts."""

from __future__ import annotations

from typing import Any

import pytest

from nexlab.ui import AuditExplorer
from nexlab.ui.explorer import ANY, NO_PACKAGE, Filters, select

pytestmark = [pytest.mark.docker, pytest.mark.root]


def paths(explorer: AuditExplorer) -> list[str]:
    return list(explorer.selection["path"])


def test_starts_with_every_path_largest_first(plain_audit: Any) -> None:
    explorer = AuditExplorer(plain_audit)
    inventory = plain_audit.inventory
    assert len(explorer.selection) == len(inventory)
    assert explorer.summary.value.startswith(f"{len(inventory)} of {len(inventory)} paths")
    allocated = list(explorer.selection["allocated"])
    assert allocated == sorted(allocated, reverse=True)
    assert "<svg" in explorer.treemap.value and "<rect" in explorer.treemap.value
    assert ">usr " in explorer.treemap.value  # /usr is the largest directory of a Debian rootfs
    assert "<table" in explorer.table.value and "/usr/" in explorer.table.value


def test_filters_combine(plain_audit: Any) -> None:
    explorer = AuditExplorer(plain_audit)
    explorer.prefix.value = "/usr/bin"
    explorer.type.value = "file"
    explorer.min_size.value = "100KiB"
    chosen = explorer.selection
    assert len(chosen) > 5
    assert all(p.startswith("/usr/bin/") for p in chosen["path"])
    assert set(chosen["type"]) == {"file"}
    assert chosen["size"].min() >= 100 * 1024
    assert "/usr/bin/bash" in paths(explorer)
    # The treemap follows the prefix: its boxes are what is under /usr/bin.
    assert "/usr/bin" in explorer.treemap.value


def test_owner_package_and_sort(plain_audit: Any) -> None:
    explorer = AuditExplorer(plain_audit)
    assert "1000:1000" in explorer.owner.options  # the nex user's home
    explorer.owner.value = "1000:1000"
    assert any(p.startswith("/home/nex") for p in paths(explorer))
    assert set(explorer.selection["uid"]) == {1000}
    explorer.owner.value = ANY
    explorer.package.value = "bash"
    assert "/usr/bin/bash" in paths(explorer)
    assert set(explorer.selection["package"]) == {"bash"}
    explorer.package.value = NO_PACKAGE
    assert "/usr/local/bin/agent" in paths(explorer)  # installed by nexlab, not by dpkg
    assert explorer.selection["package"].isna().all()
    explorer.sort.value = "path"
    assert paths(explorer) == sorted(paths(explorer))


def test_bad_size_is_a_red_line_and_keeps_the_last_selection(plain_audit: Any) -> None:
    explorer = AuditExplorer(plain_audit)
    explorer.prefix.value = "/etc"
    before = paths(explorer)
    explorer.min_size.value = "lots"
    assert "invalid size" in explorer.error.value and "color:#b00020" in explorer.error.value
    assert paths(explorer) == before
    explorer.min_size.value = "1KiB"
    assert explorer.error.value == ""


def test_findings_tab_lists_every_finding(plain_audit: Any) -> None:
    explorer = AuditExplorer(plain_audit)
    assert plain_audit.findings, "a Debian base has setuid files: the auditor should say so"
    for finding in plain_audit.findings:
        assert finding.code in explorer.findings.value


def test_select_matches_a_plain_pandas_query(plain_audit: Any) -> None:
    frame = plain_audit.inventory
    chosen = select(frame, Filters(prefix="/etc/", type="file", sort="path"))
    expected = sorted(
        p for p, t in zip(frame.index, frame["type"], strict=True) if p.startswith("/etc/") and t == "file"
    )
    assert list(chosen["path"]) == expected
