"""Unusual and corrupt images of the kind foreign corpora hold, against the kernel and debugfs.

Each image is made for real: ``mke2fs`` with the unusual feature, then
``debugfs -w`` (or a byte written at a known offset) to corrupt it the way the
foreign images were. Where the kernel can read the result it is the reference
(read-only loop mount); where it cannot, ``debugfs`` is.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nexlab.audit import audit
from nexlab.build.mount import mount
from nexlab.image import open_image


def test_bigalloc_budget_matches_statvfs(images: dict[str, Path]) -> None:
    # The kernel counts its delayed-allocation reserve and the overhead in clusters.
    for name in ("ext4-bigalloc", "ext4-bigalloc-1k"):
        image = images[name]
        report = audit(image, hash=False, fsck_check=False)
        with mount(image, read_only=True) as mounted:
            stat = os.statvfs(mounted.path)
        assert report.filesystem.cluster_size > report.filesystem.block_size
        assert report.budget.nex_free_bytes == stat.f_bavail * stat.f_frsize, name
        assert report.budget.free_bytes == stat.f_bfree * stat.f_frsize, name


def test_bigalloc_superblock_is_checked_in_clusters(images: dict[str, Path], tmp_path: Path) -> None:
    # A cluster count that does not multiply out to the blocks per group is corrupt.
    broken = tmp_path / "bad-clusters.ext4"
    broken.write_bytes(images["ext4-bigalloc"].read_bytes())
    with open(broken, "r+b") as f:
        f.seek(1024 + 0x24)  # s_clusters_per_group
        f.write((12345).to_bytes(4, "little"))
    from nexlab.errors import ImageFormatError

    with pytest.raises(ImageFormatError, match="clusters of 16 blocks per group"):
        open_image(broken)
