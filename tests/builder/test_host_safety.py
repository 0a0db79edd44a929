"""Host safety of the host-side work on image-controlled trees and on output paths.

Every hostile input here targets a canary the test creates, never a real host file.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from nexlab.builder.manifest import BuildManifest
from nexlab.builder.normalize import clamp_times, scrub
from nexlab.builder.output import staged_output
from nexlab.builder.reproducible import staging_directory
from nexlab.errors import HostError, InputError
from nexlab.host import safefs

EPOCH = 1_700_000_000  # day 19675


def _canary_dir(tmp_path: Path) -> Path:
    """A stand-in for a host /etc: a shadow file with a late change day, and a machine-id."""
    host = tmp_path / "host-etc"
    host.mkdir()
    (host / "shadow").write_text("root:*:20000:0:99999:7:::\n")
    (host / "machine-id").write_text("host-id\n")
    (host / "passwd-").write_text("host backup\n")
    return host


def test_scrub_does_not_write_through_a_symlinked_etc(tmp_path: Path) -> None:
    host = _canary_dir(tmp_path)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime) for p in host.iterdir()}
    root = tmp_path / "root"
    root.mkdir()
    (root / "etc").symlink_to(host)  # the image's etc is a link to a host directory
    scrub(root, EPOCH)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime) for p in host.iterdir()}
    assert after == before
    assert (root / "etc").is_symlink()


def test_scrub_does_not_open_a_device_or_fifo_named_shadow(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.mkfifo(root / "etc" / "shadow")  # opening a FIFO for reading would block the build
    os.mkfifo(root / "etc" / "machine-id")
    result = scrub(root, EPOCH)
    assert result.shadow_lines == 0 and result.emptied == ()


def _deep_tree(root: Path, depth: int) -> None:
    """``root/d/d/…/d/f`` ``depth`` levels deep, made through descriptors (the path is longer than PATH_MAX)."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.symlink("/", "up", dir_fd=fd)
    os.close(fd)


def test_deep_tree_is_walked_clamped_and_removed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _deep_tree(root, 2000)
    clamped, entries = clamp_times(root, EPOCH)
    assert entries == 2000 + 2 + 1  # the dirs, the file, the link, the root
    assert clamped == entries
    assert sum(1 for _ in safefs.walk(root)) == 2002  # no RecursionError either
    safefs.rmtree(root)
    assert not root.exists()


def test_staging_cleanup_removes_a_deep_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXLAB_STAGING_DIR", str(tmp_path))
    with staging_directory(64 * 2**20) as tree:
        os.rmdir(tree)
        _deep_tree(tree, 2000)
    assert list(tmp_path.iterdir()) == []


def test_walk_never_enters_a_link(tmp_path: Path) -> None:
    host = _canary_dir(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    (root / "etc").symlink_to(host)
    seen = [entry.path for entry in safefs.walk(root)]
    assert seen == ["etc"]
    safefs.rmtree(root)
    assert sorted(p.name for p in host.iterdir()) == ["machine-id", "passwd-", "shadow"]


def test_rmtree_of_a_read_only_tree(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("x")
    os.chmod(root / "a" / "b", 0o500)
    os.chmod(root / "a", 0o500)
    safefs.rmtree(root)
    assert not root.exists()


def _manifest() -> BuildManifest:
    return BuildManifest(
        base_image="b",
        base_image_id="i",
        base_image_digest="d",
        agent_sha256="a",
        script_sha256=None,
        service_sha256="s",
        setup_sha256="u",
        e2fsprogs="1.47.0",
        source_date_epoch=EPOCH,
        epoch_source="given",
        size=1,
        network="none",
        uuid="x",
        hash_seed="y",
        image_sha256="z",
    )


def test_manifest_replaces_a_planted_link(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.write_text("precious")
    link = tmp_path / "rootfs.ext4.manifest.json"
    link.symlink_to(canary)
    _manifest().write(link)
    assert canary.read_text() == "precious"
    assert not link.is_symlink() and BuildManifest.read(link) == _manifest()


def test_output_gz_never_writes_through_a_name_beside_the_temporary(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.write_text("precious")
    output = tmp_path / "rootfs.ext4.gz"
    output.symlink_to(canary)
    with staged_output(output) as staged:
        assert staged.is_file() and not staged.is_symlink()
        staged.write_bytes(b"image")
        # The old code compressed into a name derived from the temporary's: plant links there.
        for guess in (staged.with_suffix(".gz-tmp"), staged.with_suffix(".gz")):
            guess.symlink_to(canary)
    assert canary.read_text() == "precious"
    assert not output.is_symlink() and gzip.decompress(output.read_bytes()) == b"image"
    leftover = [p.name for p in tmp_path.iterdir() if "nexlab-tmp" in p.name]
    assert leftover == []


def test_output_zst_is_zstd(tmp_path: Path) -> None:
    import zstandard

    output = tmp_path / "rootfs.ext4.zst"
    with staged_output(output) as staged:
        staged.write_bytes(b"image" * 1000)
    assert zstandard.ZstdDecompressor().decompress(output.read_bytes()) == b"image" * 1000
    first = output.read_bytes()
    with staged_output(output) as staged:
        staged.write_bytes(b"image" * 1000)
    assert output.read_bytes() == first  # the same image compresses to the same bytes


def test_output_unknown_compression_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.xz"), staged_output(tmp_path / "rootfs.ext4.xz"):
        pytest.fail("the block must not run")
    assert list(tmp_path.iterdir()) == []


def test_output_mode_follows_the_umask(tmp_path: Path) -> None:
    saved = os.umask(0o027)
    try:
        with staged_output(tmp_path / "rootfs.ext4") as staged:
            staged.write_bytes(b"x")
    finally:
        os.umask(saved)
    assert (tmp_path / "rootfs.ext4").stat().st_mode & 0o777 == 0o640


def _small_tmpfs(where: Path, size: str) -> None:
    import subprocess

    from tests.conftest import require

    require(os.geteuid() == 0, "root (to mount a small tmpfs)")
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "nexlab-test", str(where)], check=True)


def _umount(where: Path) -> None:
    import subprocess

    subprocess.run(["umount", str(where)], check=False)


def test_gzip_on_a_full_disk_is_one_error(tmp_path: Path) -> None:
    small = tmp_path / "small"
    _small_tmpfs(small, "1m")
    try:
        with pytest.raises(HostError, match="no space left on the host"), staged_output(small / "r.ext4.gz") as staged:
            staged.write_bytes(os.urandom(700 * 1024))  # incompressible: the .gz does not fit beside it
        assert list(small.iterdir()) == []
    finally:
        _umount(small)


def test_output_in_a_read_only_directory_is_one_error(tmp_path: Path) -> None:
    read_only = tmp_path / "ro"
    _small_tmpfs(read_only, "1m")
    try:
        import subprocess

        subprocess.run(["mount", "-o", "remount,ro", str(read_only)], check=True)
        with pytest.raises(InputError, match="read-only"), staged_output(read_only / "rootfs.ext4"):
            pytest.fail("the block must not run")
    finally:
        _umount(read_only)


def _image(tmp_path: Path) -> Path:
    from nexlab import allocate, mkfs

    image = allocate(tmp_path / "rootfs.ext4", "32MiB").path
    mkfs(image)
    return image


def test_mount_is_nosuid_nodev_and_out_of_other_users_reach(tmp_path: Path, is_root: bool) -> None:
    import subprocess

    from nexlab import mount
    from tests.conftest import require

    image = _image(tmp_path)
    with mount(image) as mounted:
        (mounted.path / "probe").write_text("x")
        line = next(line for line in Path("/proc/mounts").read_text().splitlines() if str(mounted.path) in line)
        options = line.split()[3].split(",")
        assert "nosuid" in options and "nodev" in options, line
        parent = mounted.path.parent.stat()
        assert parent.st_uid == 0 and parent.st_mode & 0o077 == 0, oct(parent.st_mode)
        require(subprocess.run(["which", "setpriv"], capture_output=True).returncode == 0, "setpriv")
        as_nobody = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", str(mounted.path / "probe")],
            capture_output=True,
            text=True,
        )
        assert as_nobody.returncode != 0 and "Permission denied" in as_nobody.stderr


_MOUNT_LOOP = """
import sys
from nexlab.builder.mount import mount
print("READY", flush=True)
while True:
    with mount(sys.argv[1]):
        pass
"""


@pytest.mark.parametrize("terminal", [False, True], ids=["kill", "terminal-ctrl-c"])
def test_sigint_at_any_moment_of_mount_leaks_no_loop_device(tmp_path: Path, is_root: bool, terminal: bool) -> None:
    """``kill -INT`` reaches nexlab only; a terminal's Ctrl-C reaches its whole process group,
    losetup and mount included, which may die after attaching and before saying which device."""
    import random
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import loop_devices_for, mounts_containing

    image = _image(tmp_path)
    rng = random.Random(10)
    for _ in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", _MOUNT_LOOP, str(image)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=terminal,
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "READY"
        time.sleep(rng.uniform(0.05, 0.6))
        if terminal:
            os.killpg(child.pid, signal.SIGINT)
        else:
            child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
        assert "KeyboardInterrupt" in err, err
        assert loop_devices_for(image) == "", err
        assert not mounts_containing(str(image.parent)), err


def test_a_full_host_disk_is_not_called_a_too_small_image(tmp_path: Path, debian_base: str) -> None:
    from tests.builder.test_cli_errors import assert_one_line_error
    from tests.conftest import SAMPLE_AGENT, nexlab_cli

    small = tmp_path / "small"
    _small_tmpfs(small, "40m")  # the image is 200 MiB of which ~150 MiB get written: the host fills first
    try:
        result = nexlab_cli(
            "build",
            "--agent",
            str(SAMPLE_AGENT),
            "--image",
            debian_base,
            "--size",
            "200MiB",
            "--reproducible",
            "-o",
            str(small / "rootfs.ext4"),
        )
        assert_one_line_error(result, "host file system", "is full")
        assert "--size" not in result.stderr
        assert list(small.iterdir()) == []
    finally:
        _umount(small)
