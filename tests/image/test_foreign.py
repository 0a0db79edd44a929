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
from nexlab.builder.mount import mount
from nexlab.image import open_image
from nexlab.run import run


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


def _mke2fs(tmp_path: Path, name: str, *options: str, tree: Path | None = None, size: str = "16M") -> Path:
    image = tmp_path / f"{name}.ext4"
    argv = ["mke2fs", "-q", "-F", "-t", "ext4", *options]
    if tree is not None:
        argv += ["-d", str(tree)]
    run([*argv, str(image), size])
    return image


def _debugfs(image: Path, *requests: str) -> None:
    for request in requests:
        result = run(["debugfs", "-w", "-R", request, str(image)])
        assert not [line for line in result.stderr.splitlines() if not line.startswith("debugfs ")], result.stderr


def _debugfs_names(image: Path, path: str) -> list[str]:
    out = run(["debugfs", "-R", f"ls -p {path}", str(image)]).stdout
    names = [line.split("/")[5] for line in out.splitlines() if line.count("/") >= 6]
    return sorted(n for n in names if n not in (".", ".."))


def _kernel_names(image: Path, path: str) -> list[str]:
    with mount(image, read_only=True) as mounted:
        return sorted(os.listdir(mounted.path / path.lstrip("/")))


def _reader_names(image: Path, path: str) -> tuple[list[str], list[str]]:
    with open_image(image) as fs:
        prefix = path.rstrip("/") + "/"
        names = sorted(
            e.path[len(prefix) :] for e in fs.walk() if e.path.startswith(prefix) and "/" not in e.path[len(prefix) :]
        )
        return names, list(fs.warnings)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "d").mkdir(parents=True)
    for name in ("alpha", "beta", "gamma"):
        (root / "d" / name).write_text(name + "\n")
    return root


def test_directory_block_in_an_unwritten_extent(is_root: bool, tmp_path: Path, tree: Path) -> None:
    image = _mke2fs(tmp_path, "uninit-dir", "-b", "4096", tree=tree)
    # i_block word 4 of an extent inode is the first leaf's length: bit 15 marks it unwritten.
    _debugfs(image, "sif /d block[4] 0x8001")
    assert "[u]" in run(["debugfs", "-R", "stat /d", str(image)]).stdout
    names, warnings = _reader_names(image, "/d")
    assert names == _kernel_names(image, "/d") == _debugfs_names(image, "/d") == ["alpha", "beta", "gamma"]
    assert any("unwritten extent" in w for w in warnings)


@pytest.mark.parametrize("size", [200, 40])
def test_inline_directory_with_a_wrong_size(is_root: bool, tmp_path: Path, tree: Path, size: int) -> None:
    image = _mke2fs(tmp_path, f"inline-dir-{size}", "-b", "4096", "-O", "inline_data", tree=tree)
    assert "Size of inline data: 60" in run(["debugfs", "-R", "stat /d", str(image)]).stdout
    # The kernel reads the whole inline area whatever i_size says.
    _debugfs(image, f"sif /d size {size}")
    names, warnings = _reader_names(image, "/d")
    assert names == _kernel_names(image, "/d") == _debugfs_names(image, "/d") == ["alpha", "beta", "gamma"]
    assert any(f"size {size} but 60 bytes inline" in w for w in warnings)


def test_symlinks_read_as_the_kernel_reads_them(is_root: bool, tmp_path: Path) -> None:
    image = _mke2fs(tmp_path, "links", "-b", "4096", "-O", "ea_inode")
    with mount(image) as mounted:
        os.symlink("short-target", mounted.path / "fast")
        os.symlink("a" * 4095, mounted.path / "full")
        os.symlink("fast-but-big", mounted.path / "oversized")
    _debugfs(
        image,
        # ea_inode: i_blocks may carry an EA inode's blocks, so only the size says "fast".
        "sif /fast blocks 8",
        # A slow target is cut at block size - 1, whatever i_size claims.
        "sif /full size 4200",
        # 70 bytes cannot be fast on ea_inode: the kernel reads i_block as a block map and fails.
        "sif /oversized size 70",
    )
    with mount(image, read_only=True) as mounted:
        kernel = {}
        for name in ("fast", "full", "oversized"):
            try:
                kernel[name] = os.readlink(mounted.path / name)
            except OSError:
                kernel[name] = None
        listed = sorted(os.listdir(mounted.path))
    with open_image(image) as fs:
        entries = {e.path.lstrip("/"): e for e in fs.walk() if e.type == "symlink"}
        warnings = list(fs.warnings)
    assert kernel == {"fast": "short-target", "full": "a" * 4095, "oversized": None}
    assert {name: e.target for name, e in entries.items()} == kernel
    assert sorted([*entries, "lost+found"]) == listed  # listed even when readlink fails
    assert any("4200 bytes, cut at 4095" in w for w in warnings)
    assert any("/oversized: symlink target unreadable" in w for w in warnings)


def test_fast_symlink_longer_than_i_block(is_root: bool, tmp_path: Path) -> None:
    # Without ea_inode a symlink with no blocks is fast; i_size 100 cannot fit i_block's 60 bytes.
    image = _mke2fs(tmp_path, "fast100", "-b", "4096")
    with mount(image) as mounted:
        os.symlink("x" * 59, mounted.path / "link")
    _debugfs(image, "sif /link size 100")
    with mount(image, read_only=True) as mounted:
        assert sorted(os.listdir(mounted.path)) == ["link", "lost+found"]
        with pytest.raises(OSError):
            os.readlink(mounted.path / "link")  # the kernel: "invalid fast symlink length"
    with open_image(image) as fs:
        entry = fs.lookup("/link")
        assert entry is not None and entry.type == "symlink" and entry.target is None
        assert any("invalid fast symlink length 100" in w for w in fs.warnings)
        assert fs.lookup("/link", follow=True) is None
