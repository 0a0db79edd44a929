"""``nexlab resize``: grow, shrink, refusals, and the original left whole whatever happens.

Images are made with ``mkfs.ext4 -d`` from a small tree (no Docker, no root needed).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

import nexlab
from nexlab.builder import sizing
from nexlab.builder.mkfs import mkfs
from nexlab.builder.resize import ResizeResult, resize
from nexlab.errors import InputError, ResizeError, ShrinkBelowContentError
from nexlab.run import run
from tests.builder.test_cli_errors import assert_one_line_error
from tests.conftest import nexlab_cli, scratch

MiB = 2**20


@pytest.fixture(scope="module")
def original(module_tmp: Path) -> Path:
    where = scratch(module_tmp, "resize")
    tree = where / "tree"
    for index in range(40):
        directory = tree / f"d{index % 4}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{index}").write_bytes(os.urandom(512 * 1024))  # 20 MiB in all
    image = where / "original.ext4"
    with image.open("wb") as handle:
        handle.truncate(64 * MiB)
    mkfs(image, populate_from=tree)
    return image


@pytest.fixture
def image(original: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "rootfs.ext4"
    run(["cp", "--sparse=always", str(original), str(copy)])
    return copy


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(path: Path) -> list[tuple[str, str | None]]:
    return sorted((r.path, r.sha256) for r in nexlab.audit(path, fsck_check=False).files)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".nexlab-tmp"))


def test_grow_keeps_the_content_and_is_clean(image: Path) -> None:
    before = listing(image)
    result = resize(image, "96MiB")
    assert isinstance(result, ResizeResult) and (result.old_size, result.new_size) == (64 * MiB, 96 * MiB)
    assert image.stat().st_size == 96 * MiB
    audited = nexlab.audit(image)
    assert audited.fsck.clean and audited.filesystem.size_bytes == 96 * MiB
    assert listing(image) == before
    assert "grown" in str(result) and not leftovers(image.parent)
    assert result.stale_manifest is None


def test_a_reproducible_builds_manifest_is_said_to_be_stale(image: Path) -> None:
    manifest = image.with_name(image.name + ".manifest.json")
    manifest.write_text("{}")
    result = resize(image, "72MiB")
    assert result.stale_manifest == manifest and "describes the image before the resize" in str(result)
    assert manifest.read_text() == "{}"  # left as it was: it is the record of what was built


def test_shrink_keeps_the_content(image: Path) -> None:
    before = listing(image)
    result = resize(image, "40MiB")
    assert result.new_size == 40 * MiB == image.stat().st_size
    assert nexlab.audit(image).fsck.clean and listing(image) == before
    assert result.minimum_size < 40 * MiB


def test_a_shrink_below_the_content_is_refused_with_the_minimum(image: Path) -> None:
    digest = sha256(image)
    with pytest.raises(ShrinkBelowContentError, match=r"its content needs at least .* resize2fs -P") as caught:
        resize(image, "16MiB")
    assert 20 * MiB < caught.value.minimum_bytes < 64 * MiB
    assert sha256(image) == digest and not leftovers(image.parent)
    result = nexlab_cli("resize", str(image), "--size", "16MiB")
    assert_one_line_error(result, "cannot shrink", "use --size")


@pytest.mark.parametrize("free", ["8MiB", "48MiB"])
def test_free_is_exact_in_both_directions(image: Path, free: str) -> None:
    asked = sizing.parse_size(free)
    result = resize(image, free=free)
    budget = nexlab.audit(image, hash=False).budget
    assert asked <= budget.nex_free_bytes < asked + sizing.STEP
    assert result.nex_free_bytes == budget.nex_free_bytes and result.requested_free == asked


def test_an_image_with_errors_is_refused_and_left_as_it_was(image: Path) -> None:
    # Clear the inode of a file that a directory still names: e2fsck finds that.
    inode = run(["debugfs", "-R", "stat /d0/f0", str(image)]).stdout.split("Inode: ")[1].split()[0]
    run(["debugfs", "-w", "-R", f"clri <{inode}>", str(image)])
    digest = sha256(image)
    with pytest.raises(ResizeError, match=r"is not clean .*nothing was changed"):
        resize(image, "96MiB")
    assert sha256(image) == digest and not leftovers(image.parent)
    assert_one_line_error(nexlab_cli("resize", str(image), "--size", "96MiB"), "is not clean", "e2fsck -f")


def test_a_missing_image_or_no_image_at_all(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        resize(tmp_path / "missing.ext4", "96MiB")
    assert_one_line_error(nexlab_cli("resize", str(tmp_path / "missing.ext4"), "--free", "8MiB"), "does not exist")
    junk = tmp_path / "junk.ext4"
    junk.write_bytes(bytes(2 * MiB))
    with pytest.raises(ResizeError, match="not an ext2/3/4 image"):
        resize(junk, "96MiB")
    with pytest.raises(InputError, match="one of --size and --free"):
        resize(junk, "96MiB", free="8MiB")
    assert nexlab_cli("resize", str(junk), "--size", "1G", "--free", "8MiB").returncode == 2


def test_a_symlink_is_refused_and_what_it_names_untouched(image: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    canary = elsewhere / "canary.ext4"
    shutil.move(image, canary)
    link = tmp_path / "rootfs-link.ext4"
    link.symlink_to(canary)
    digest = sha256(canary)
    with pytest.raises(InputError, match="is a symbolic link"):
        resize(link, "96MiB")
    assert link.is_symlink() and os.readlink(link) == str(canary)
    assert sha256(canary) == digest and canary.stat().st_size == 64 * MiB
    assert not leftovers(tmp_path) and not leftovers(elsewhere)


def test_a_failed_resize2fs_leaves_the_original_whole(
    image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """resize2fs dying half-way (here: a resize2fs that cuts the copy short and fails; the real
    one runs for -P) leaves the image as it was and no temporary beside it."""
    real = shutil.which("resize2fs", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    assert real
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "resize2fs").write_text(
        f'#!/bin/sh\n[ "$1" = -P ] && exec {real} "$@"\ntruncate -s 1M "$1"\necho "resize2fs: killed" >&2\nexit 1\n'
    )
    (shim / "resize2fs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    digest = sha256(image)
    with pytest.raises(ResizeError, match="resize2fs failed: resize2fs: killed; the original is unchanged"):
        resize(image, "96MiB")
    assert sha256(image) == digest and not leftovers(image.parent)


def test_ctrl_c_during_resize2fs_leaves_the_original_whole(image: Path, tmp_path: Path) -> None:
    """A real interrupt: SIGINT to ``nexlab resize`` while resize2fs runs (a resize2fs that writes
    to the copy and then waits, so the signal lands mid-way)."""
    import signal
    import subprocess
    import sys
    import time

    real = shutil.which("resize2fs", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    started = tmp_path / "started"
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "resize2fs").write_text(
        f'#!/bin/sh\n[ "$1" = -P ] && exec {real} "$@"\n'
        f'dd if=/dev/zero of="$1" bs=1M count=4 conv=notrunc 2>/dev/null\ntouch {started}\nexec sleep 60\n'
    )
    (shim / "resize2fs").chmod(0o755)
    digest = sha256(image)
    exe = Path(sys.executable).parent / "nexlab"
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
    process = subprocess.Popen(
        [str(exe), "resize", str(image), "--size", "96MiB"], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert started.exists(), process.stderr.read() if process.stderr else ""
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0 and "Traceback" not in stderr, stderr
    assert sha256(image) == digest and not leftovers(image.parent)
    assert nexlab.audit(image).fsck.clean
