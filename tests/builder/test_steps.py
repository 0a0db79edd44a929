"""Each build step on its own, with real files, loop devices and mkfs.ext4."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from nexlab import allocate, mkfs, mount, unmount
from nexlab.builder.mkfs import superblock_facts
from nexlab.builder.writeback import flushing, writing_back
from nexlab.errors import InputError, ToolMissingError
from tests.conftest import loop_devices_for, mounts_containing


def test_allocate_makes_an_exact_sparse_file(tmp_path: Path) -> None:
    result = allocate(tmp_path / "rootfs.ext4", "150MiB")
    info = (tmp_path / "rootfs.ext4").stat()
    assert info.st_size == result.size == 150 * 2**20
    assert info.st_blocks * 512 < 1024 * 1024, "the file should be sparse"
    assert "150.0 MiB" in str(result) and "<table>" in result._repr_html_()


def test_allocate_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    target = tmp_path / "rootfs.ext4"
    target.write_bytes(b"precious")
    with pytest.raises(InputError, match="already exists"):
        allocate(target, "16MiB")
    assert target.read_bytes() == b"precious"
    allocate(target, "16MiB", overwrite=True)
    assert target.stat().st_size == 16 * 2**20
    with target.open("rb") as handle:
        assert handle.read(8) == b"\0" * 8


@pytest.mark.parametrize("size", ["1MiB", "bogus", 0])
def test_allocate_rejects_bad_sizes(tmp_path: Path, size: object) -> None:
    with pytest.raises(InputError):
        allocate(tmp_path / "x.ext4", size)  # type: ignore[arg-type]
    assert not (tmp_path / "x.ext4").exists()


def test_allocate_needs_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        allocate(tmp_path / "missing" / "x.ext4", "16MiB")


def test_mkfs_pins_block_and_inode_size_on_small_images(tmp_path: Path) -> None:
    # Left alone, mke2fs gives a 150 MB image 1 KiB blocks and 128-byte inodes (no dates past 2038).
    image = allocate(tmp_path / "rootfs.ext4", 157286400).path
    result = mkfs(image, label="nexroot", uuid="4d3c6a9e-1c1b-4c53-9b0b-4f0d6b1c0a11")
    facts = superblock_facts(image)
    assert (result.block_size, result.inode_size) == (4096, 256)
    assert facts["Block size"] == "4096" and facts["Inode size"] == "256"
    assert facts["Reserved block count"] == "0", "the agent runs as nex and cannot use root-reserved blocks"
    assert facts["Filesystem UUID"] == "4d3c6a9e-1c1b-4c53-9b0b-4f0d6b1c0a11"
    assert facts["Filesystem volume name"] == "nexroot"
    for feature in ("64bit", "extent", "metadata_csum", "has_journal"):
        assert feature in result.features
    assert result.command[0] == "mkfs.ext4" and "mkfs.ext4" in result._repr_html_()


def test_mkfs_honours_reserved_percent_and_features(tmp_path: Path) -> None:
    image = allocate(tmp_path / "rootfs.ext4", "64MiB").path
    result = mkfs(image, reserved_percent=5, inode_size=128, features=("^has_journal", "extent"))
    facts = superblock_facts(image)
    assert int(facts["Reserved block count"]) == pytest.approx(0.05 * int(facts["Block count"]), abs=2)
    assert result.inode_size == 128 and "has_journal" not in result.features


@pytest.mark.parametrize(
    "options",
    [{"block_size": 3000}, {"inode_size": 100}, {"reserved_percent": 80}, {"uuid": "not-a-uuid"}],
)
def test_mkfs_rejects_bad_options(tmp_path: Path, options: dict[str, object]) -> None:
    image = allocate(tmp_path / "rootfs.ext4", "16MiB").path
    with pytest.raises(InputError):
        mkfs(image, **options)  # type: ignore[arg-type]


def test_mkfs_needs_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a file"):
        mkfs(tmp_path / "nothing.ext4")


def test_mkfs_missing_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = allocate(tmp_path / "rootfs.ext4", "16MiB").path
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("nexlab.run._SBIN", str(tmp_path))
    with pytest.raises(ToolMissingError, match=r"mkfs.ext4 not found.*apt-get install e2fsprogs"):
        mkfs(image)


def test_mount_and_unmount_release_everything(tmp_path: Path, is_root: bool) -> None:
    image = allocate(tmp_path / "rootfs.ext4", "32MiB").path
    mkfs(image)
    mounted = mount(image)
    assert mounted.loop_device in loop_devices_for(image)
    assert mounts_containing(str(mounted.path))
    (mounted.path / "hello").write_text("hi")
    assert "loop device" in mounted._repr_html_()
    result = unmount(mounted)
    assert result.fsck_clean, result.fsck_report
    assert loop_devices_for(image) == ""
    assert not mounts_containing(str(mounted.path))
    assert not mounted.path.exists(), "the temporary mount point is removed"
    mounted.release()  # idempotent
    assert "clean" in str(result)


def _mount_line(path: Path) -> str:
    return next(line for line in Path("/proc/self/mountinfo").read_text().splitlines() if f" {path} " in line)


def _sectors_written(loop_device: str) -> int:
    # /sys/block/loopN/stat: the 7th field counts 512-byte sectors written to the device.
    return int(Path(f"/sys/block/{Path(loop_device).name}/stat").read_text().split()[6])


def test_a_build_mount_sends_no_flushes_to_the_loop_device(tmp_path: Path, is_root: bool) -> None:
    # A flush on a loop device is an fsync of the backing file: the image would wait for the disk.
    image = allocate(tmp_path / "rootfs.ext4", "32MiB").path
    mkfs(image)
    with mount(image) as mounted:
        assert "nobarrier" in _mount_line(mounted.path).split()[-1].split(",")
        (mounted.path / "data").write_bytes(os.urandom(4 << 20))
    with mount(image, read_only=True) as again:
        assert len((again.path / "data").read_bytes()) == 4 << 20
    assert unmount(mount(image)).fsck_clean


def test_flushing_writes_the_mount_out_while_its_block_runs(tmp_path: Path, is_root: bool) -> None:
    image = allocate(tmp_path / "rootfs.ext4", "64MiB").path
    mkfs(image)
    mounted = mount(image)
    payload = os.urandom(16 << 20)
    (mounted.path / "data").write_bytes(payload)
    before = _sectors_written(mounted.loop_device)
    with flushing(mounted):
        os.listdir(mounted.path)  # the block may read the mount meanwhile
    # The write-out is over when the block has ended: the 16 MiB reached the loop device.
    assert _sectors_written(mounted.loop_device) - before >= len(payload) // 512
    result = unmount(mounted)
    assert result.fsck_clean, result.fsck_report
    with mount(image, read_only=True) as again:
        assert (again.path / "data").read_bytes() == payload


def test_flushing_lets_the_mount_go_when_its_block_raises(tmp_path: Path, is_root: bool) -> None:
    image = allocate(tmp_path / "rootfs.ext4", "32MiB").path
    mkfs(image)
    mounted = mount(image)
    (mounted.path / "data").write_bytes(os.urandom(8 << 20))
    with pytest.raises(RuntimeError), flushing(mounted):
        raise RuntimeError("boom")
    # Its thread was joined and its descriptor closed: umount does not find the mount busy.
    assert unmount(mounted).fsck_clean
    assert loop_devices_for(image) == "" and not mounts_containing(str(mounted.path))


def test_writing_back_pushes_the_data_down_while_its_block_runs(tmp_path: Path, is_root: bool) -> None:
    image = allocate(tmp_path / "rootfs.ext4", "64MiB").path
    mkfs(image)
    mounted = mount(image)
    payload = os.urandom(16 << 20)
    with writing_back(mounted, interval=0.05):
        before = _sectors_written(mounted.loop_device)
        (mounted.path / "data").write_bytes(payload)
        deadline = time.monotonic() + 10
        # Without the thread the 16 MiB would sit in the mount's page cache until the umount.
        while _sectors_written(mounted.loop_device) - before < len(payload) // 512:
            assert time.monotonic() < deadline, "nothing reached the loop device while the block ran"
            time.sleep(0.05)
    result = unmount(mounted)
    assert result.fsck_clean, result.fsck_report
    with mount(image, read_only=True) as again:
        assert (again.path / "data").read_bytes() == payload


def test_writing_back_lets_the_mount_go_when_its_block_raises(tmp_path: Path, is_root: bool) -> None:
    image = allocate(tmp_path / "rootfs.ext4", "32MiB").path
    mkfs(image)
    mounted = mount(image)
    with pytest.raises(RuntimeError), writing_back(mounted, interval=0.01):
        (mounted.path / "data").write_bytes(os.urandom(8 << 20))
        time.sleep(0.05)
        raise RuntimeError("boom")
    assert unmount(mounted).fsck_clean  # its thread was joined and its descriptors closed: not busy
    assert loop_devices_for(image) == "" and not mounts_containing(str(mounted.path))


def test_mount_is_released_when_the_block_raises(tmp_path: Path, is_root: bool) -> None:
    image = allocate(tmp_path / "rootfs.ext4", "32MiB").path
    mkfs(image)
    with pytest.raises(RuntimeError), mount(image) as mounted:
        raise RuntimeError("boom")
    assert loop_devices_for(image) == ""
    assert not mounts_containing(str(mounted.path))


def test_mount_of_a_non_filesystem_leaves_no_loop_device(tmp_path: Path, is_root: bool) -> None:
    image = allocate(tmp_path / "garbage.ext4", "16MiB").path
    from nexlab.errors import CommandError

    with pytest.raises(CommandError, match="mount"):
        mount(image)
    assert loop_devices_for(image) == ""


def test_read_only_mount_changes_nothing(tmp_path: Path, is_root: bool) -> None:
    image = allocate(tmp_path / "rootfs.ext4", "32MiB").path
    mkfs(image)
    before = image.read_bytes()
    with mount(image, read_only=True) as mounted:
        assert stat.S_ISDIR(os.lstat(mounted.path / "lost+found").st_mode)
    assert image.read_bytes() == before
