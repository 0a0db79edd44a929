"""The reproducible build's parts, each on its own (no Docker): dumpe2fs parsing, debugfs, the epoch."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from nexlab.builder.reproducible import debugfs, epoch
from nexlab.builder.reproducible.dumpe2fs import in_use_inodes, parse_in_use
from nexlab.errors import CommandError, InputError
from nexlab.image import open_image
from nexlab.run import run


def _image(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("nex\n")
    (tree / "bin").mkdir()
    image = tmp_path / "fs.ext4"
    with image.open("wb") as handle:
        handle.truncate(16 * 2**20)
    run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(image)])
    return image


def test_parse_in_use_reads_ranges_per_group_and_skips_reserved_inodes() -> None:
    listing = "Group 0: (Blocks 0-8191)\n  Free inodes: 14-16\nGroup 1: (Blocks 8192-16383)\n  Free inodes: 17, 19-32\n"
    assert parse_in_use(listing, 16) == [2, 11, 12, 13, 18]


def test_in_use_inodes_are_the_inodes_of_the_files(tmp_path: Path) -> None:
    image = _image(tmp_path)
    with open_image(image) as fs:
        walked = {entry.inode for entry in fs.walk()} | {2}
    assert set(in_use_inodes(image)) == walked


def test_a_debugfs_session_runs_its_commands_and_raises_its_complaints(tmp_path: Path) -> None:
    image = _image(tmp_path)
    with debugfs.session(image) as session:
        session.add("sif <2> atime @1000", "sif <2> ctime @1000")
        session.run()
        scratch = session.scratch
    assert not scratch.exists()
    stat = run(["debugfs", "-R", "stat <2>", str(image)]).stdout
    assert "atime: 0x000003e8" in stat and "ctime: 0x000003e8" in stat
    with pytest.raises(CommandError, match="debugfs"), debugfs.session(image) as session:
        session.add("sif <999999> atime @1")
        session.run()


def test_the_epoch_is_the_given_one_else_the_base_creation_clamped() -> None:
    base = SimpleNamespace(id="sha256:" + "0" * 64, attrs={"Created": "2024-01-02T03:04:05.123456789Z"})
    assert epoch.choose(base, 5) == (5, epoch.GIVEN)  # type: ignore[arg-type]
    assert epoch.choose(base, None) == (1704164645, epoch.BASE_CREATED)  # type: ignore[arg-type]
    future = SimpleNamespace(id=base.id, attrs={"Created": "2999-01-01T00:00:00Z"})
    assert epoch.default_epoch(future) <= __import__("time").time()  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no creation time"):
        epoch.default_epoch(SimpleNamespace(id=base.id, attrs={}))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="negative"):
        epoch.check_given(-1)
    # e2fsprogs takes E2FSPROGS_FAKE_TIME=0 as unset: epoch 0 would put the clock in the superblock.
    with pytest.raises(InputError, match="epoch 0 cannot be reproduced"):
        epoch.check_given(0)
    loaded = SimpleNamespace(id=base.id, attrs={"Created": "0001-01-01T00:00:00Z"})  # docker load, no "created"
    with pytest.raises(InputError, match="no creation time after 1970"):
        epoch.default_epoch(loaded)  # type: ignore[arg-type]
