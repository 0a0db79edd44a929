"""Files that are not images, damaged images and hostile edits: only ImageFormatError escapes."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest

from nexlab.builder.mount import mount
from nexlab.errors import ImageFormatError, InputError
from nexlab.image import open_image
from nexlab.run import run
from tests.conftest import scratch
from tests.image.images import SMALL_CASES, make_small_image

SB = 1024


@pytest.fixture(scope="module")
def small(module_tmp: Path) -> Path:
    return make_small_image(SMALL_CASES[0], scratch(module_tmp, "hostile"))


@pytest.fixture
def copy(small: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy.img"
    shutil.copyfile(small, target)
    return target


def debugfs(image: Path, command: str) -> None:
    run(["debugfs", "-w", "-R", command, str(image)])


def patch_u32(image: Path, offset: int, transform: object) -> None:
    with open(image, "r+b") as f:
        f.seek(offset)
        value = int.from_bytes(f.read(4), "little")
        f.seek(offset)
        f.write(transform(value).to_bytes(4, "little"))  # type: ignore[operator]


@pytest.mark.parametrize(
    "content",
    [b"", bytes(1 << 20), os.urandom(1 << 20), bytes(1080) + b"\x53\xef" + os.urandom(2000)],
    ids=["empty", "zeros", "random", "magic-only"],
)
def test_not_an_image(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.img"
    path.write_bytes(content)
    with pytest.raises(ImageFormatError):
        open_image(path)


def test_tar_is_not_an_image(tmp_path: Path) -> None:
    # libarchive reads an ext4 image as an empty tar; the reverse must not happen either.
    (tmp_path / "f").write_text("x")
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "f", arcname="f")
    with pytest.raises(ImageFormatError, match="0xEF53"):
        open_image(archive)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        open_image(tmp_path / "absent.img")


def test_truncated_image_gives_a_partial_answer(copy: Path) -> None:
    with open_image(copy) as fs:
        expected = fs.sha256_files(list(fs.walk()))
    os.truncate(copy, copy.stat().st_size // 4)
    with open_image(copy) as fs:
        entries = list(fs.walk())
        hashes = fs.sha256_files(entries)
        warnings = list(fs.warnings)
    assert any("truncated" in w for w in warnings)
    assert any("content unreadable" in w for w in warnings)
    assert {e.path for e in entries} >= {"/", "/etc/os-release", "/big"}
    # What could be read is right; what could not is missing, not wrong.
    assert hashes and len(hashes) < len(expected)
    assert all(expected[inode] == digest for inode, digest in hashes.items())


def test_directory_cycle_terminates(copy: Path) -> None:
    debugfs(copy, "link /a/b /a/b/c/loop")
    with open_image(copy) as fs:
        paths = [e.path for e in fs.walk()]
        warnings = list(fs.warnings)
    assert "/a/b/c/loop" in paths and "/a/b/c/loop/c" not in paths
    assert any("seen before" in w for w in warnings)


def test_symlink_loop_and_escape(copy: Path) -> None:
    debugfs(copy, "symlink /loop1 /loop2")
    debugfs(copy, "symlink /loop2 /loop1")
    debugfs(copy, "symlink /escape ../../../../../../etc/hostname")
    with open_image(copy) as fs:
        assert fs.lookup("/loop1", follow=True) is None
        assert fs.read_path("/loop1") is None
        assert any("more than 40 symlinks" in w for w in fs.warnings)
        # ".." above the image root stays at the image root: the host's /etc is never read.
        assert fs.read_path("/escape") is None
        assert fs.lookup("/escape", follow=True) is None
        link = fs.lookup("/escape")
        assert link is not None and link.target == "../../../../../../etc/hostname"


def test_hostile_size_is_bounded(copy: Path) -> None:
    debugfs(copy, "sif /medium size 0x40000000000")
    with open_image(copy) as fs:
        entries = {e.path: e for e in fs.walk()}
        medium = entries["/medium"]
        assert medium.size == 1 << 42
        hashes = fs.sha256_files(entries.values())
        assert medium.inode not in hashes and entries["/big"].inode in hashes
        assert any("budget" in w for w in fs.warnings)
        with pytest.raises(ImageFormatError):
            fs.read_bytes(medium)
        assert fs.read_bytes(medium, limit=5) == bytes(range(5))


def test_extent_outside_filesystem(copy: Path) -> None:
    with open_image(copy) as fs:
        inode = fs.lookup("/medium")
        assert inode is not None
        blocks_count = fs.info.blocks_count
    # The first extent's start (i_block + 12 header + 8) points past the end of the filesystem.
    debugfs(copy, f"sif /medium block[5] {blocks_count + 10}")
    with open_image(copy) as fs:
        entry = fs.lookup("/medium")
        assert entry is not None
        with pytest.raises(ImageFormatError, match="outside the filesystem"):
            fs.read_bytes(entry)
        assert entry.inode not in fs.sha256_files([entry])


@pytest.mark.parametrize(("bit", "fatal"), [(0x1, True), (0x8, True), (0x10000, False), (0x40000000, False)])
def test_incompat_features(copy: Path, bit: int, fatal: bool) -> None:
    patch_u32(copy, SB + 0x60, lambda value: value | bit)
    if fatal:
        with pytest.raises(ImageFormatError, match="unsupported"):
            open_image(copy)
        return
    with open_image(copy) as fs:
        assert fs.warnings
        assert fs.read_path("/etc/os-release") == b"ID=small\n"


def test_journal_needing_recovery(is_root: bool, tmp_path: Path) -> None:
    image = tmp_path / "live.img"
    run(["mke2fs", "-q", "-F", "-t", "ext4", str(image), "32M"])
    snapshot = tmp_path / "snapshot.img"
    with mount(image) as m:
        (m.path / "written").write_bytes(b"committed\n")
        os.sync()
        # A copy taken while mounted is what a crash leaves: the journal needs recovery.
        shutil.copyfile(image, snapshot)
    with open_image(snapshot) as fs:
        assert fs.info.needs_recovery
        assert "needs_recovery" in fs.info.features
        assert any("journal needs recovery" in w for w in fs.warnings)
        entries = list(fs.walk())
        assert entries[0].path == "/"
        fs.sha256_files(entries)
    with open_image(image) as fs:
        assert not fs.info.needs_recovery and fs.read_path("/written") == b"committed\n"


def test_casefold_image_is_readable(tmp_path: Path) -> None:
    # This kernel cannot mount casefold filesystems; the reader must still read one.
    staging = tmp_path / "tree"
    (staging / "Dir").mkdir(parents=True)
    (staging / "Dir" / "File.TXT").write_bytes(b"case\n")
    image = tmp_path / "casefold.img"
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "casefold", "-d", str(staging), str(image), "8M"])
    with open_image(image) as fs:
        assert "casefold" in fs.info.features
        assert [e.path for e in fs.walk()] == ["/", "/Dir", "/Dir/File.TXT", "/lost+found"]
        assert fs.read_path("/Dir/File.TXT") == b"case\n"
        assert fs.warnings == []
