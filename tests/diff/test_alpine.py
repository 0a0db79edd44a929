"""The issue's "done when": Alpine 3.19 against 3.20, both built through the mount path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nexlab.diff import Diff, diff
from tests.conftest import ALPINE_TARBALLS, nexlab_cli, require, scratch


@pytest.fixture(scope="module")
def alpine_pair(module_tmp: Path, docker_client, is_root, sample_agent) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    from nexlab.builder import base
    from nexlab.builder.pipeline import build_rootfs

    work = scratch(module_tmp, "alpine")
    images = []
    for release in ("3.19", "3.20"):
        tarball = ALPINE_TARBALLS[release]
        require(tarball.is_file(), f"the Alpine {release} minirootfs in {tarball.parent}")
        tag = base.alpine(tarball).tag
        # By ID: another test may re-import the same tag meanwhile.
        image_id = docker_client.images.get(tag).id
        images.append(build_rootfs(work / f"alpine-{release}.ext4", agent=sample_agent, image=image_id, size="64MiB"))
    return images[0].output, images[1].output


@pytest.fixture(scope="module")
def alpine_diff(alpine_pair: tuple[Path, Path]) -> Diff:
    return diff(*alpine_pair)


def test_package_version_changes(alpine_diff: Diff) -> None:
    frame = alpine_diff.package_changes
    assert len(frame) >= 5
    changed = frame.set_index("name")
    assert changed.loc["alpine-baselayout", "manager"] == "apk"
    upgraded = frame[frame.change == "upgraded"]
    assert len(upgraded) >= 5
    musl = changed.loc["musl"]
    assert musl.version_a.startswith("1.2.4") and musl.version_b.startswith("1.2.5")
    assert (frame.version_a != frame.version_b).all()


def test_size_delta_per_package(alpine_diff: Diff) -> None:
    frame = alpine_diff.size_by_package.set_index("package")
    assert frame.loc["musl", "a"] > 0 and frame.loc["musl", "b"] > 0
    assert (frame.delta != 0).sum() >= 3
    assert (frame.delta == frame.b - frame.a).all()
    dirs = alpine_diff.size_by_directory
    assert (dirs.delta != 0).any()


def test_cli_summary_and_json(alpine_pair: tuple[Path, Path], tmp_path: Path) -> None:
    import json

    cli = nexlab_cli("diff", "--json", str(alpine_pair[0]), str(alpine_pair[1]))
    assert cli.returncode == 1, cli.stderr
    data = json.loads(cli.stdout)
    musl = next(p for p in data["packages"] if p["name"] == "musl")
    assert musl["change"] == "upgraded"
    libssl = next(row for row in data["size_by_package"] if row["package"] == "libssl3")
    assert libssl["delta"] == libssl["b"] - libssl["a"] > 0 and libssl["percent"] > 0
    text = nexlab_cli("diff", str(alpine_pair[0]), str(alpine_pair[1])).stdout
    # The package table (one presenter layer since issue 11): name, manager, change, A, B, size.
    assert "packages:" in text and re.search(r"\bmusl +apk +upgraded +1\.2\.4\S* +1\.2\.5", text), text
    assert "size by package" in text and "libssl3" in text
