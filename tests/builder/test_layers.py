"""The mount build's fast path (the setup container's layers through a host overlay, GNU tar
read by libarchive on its pipe) gives the same image content as the engine's export, falls
back to export when told to, and leaves no mount behind."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

import nexlab
from nexlab.builder.extract import extract
from nexlab.builder.layers import ENV, mount_options, tar_argv
from nexlab.builder.pipeline import build_rootfs
from nexlab.errors import CommandError, ImageTooSmallError
from nexlab.host import owned
from nexlab.run import stream

pytestmark = [pytest.mark.docker, pytest.mark.root]

COLUMNS = ["path", "type", "mode", "uid", "gid", "size", "sha256", "target"]


def _inventory(image: Path) -> dict[str, tuple[object, ...]]:
    frame = nexlab.audit(image).inventory.reset_index()[COLUMNS]
    rows: dict[str, tuple[object, ...]] = {}
    for row in frame.itertuples(index=False):
        values = tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row)
        # A directory's size is its entry blocks, which depend on the order names arrived in.
        rows[str(values[0])] = values[1:5] + ((None,) if values[1] == "dir" else values[5:6]) + values[6:]
    return rows


def _overlays() -> list[str]:
    root = str(owned.mount_root())
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line for line in lines if f" {root}/" in line and " - overlay " in line]


def test_fast_path_matches_export_and_leaves_no_mount(
    tmp_path: Path,
    debian_base: str,
    sample_agent: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG, logger="nexlab.layers")
    fast, engine = tmp_path / "fast.ext4", tmp_path / "engine.ext4"
    build_rootfs(fast, agent=sample_agent, image=debian_base, size="200MiB")
    assert "from its layers" in caplog.text, "the fast path was not taken on a local overlay2 engine"
    assert "written into the container's layer" in caplog.text, "the setup files went through the engine"
    assert not _overlays()
    caplog.clear()
    monkeypatch.setenv(ENV, "engine")
    build_rootfs(engine, agent=sample_agent, image=debian_base, size="200MiB")
    assert "using the engine's export" in caplog.text
    assert "from its layers" not in caplog.text
    assert "setup files go through the engine" in caplog.text
    # The agent and its service, placed by setup.sh from /nexlab or by the engine's put_archive,
    # come out the same (mode, owners, content; their directories too), as does everything else.
    ours, theirs = _inventory(fast), _inventory(engine)
    assert len(ours) > 1000
    assert ours == theirs


def test_a_base_with_its_own_nexlab_directory_gets_the_files_through_the_engine(
    tmp_path: Path, docker_client, alpine_base: str, sample_agent: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    container = docker_client.containers.run(
        alpine_base, ["/bin/sh", "-c", "mkdir /nexlab && echo theirs >/nexlab/notes"], detach=True, network_mode="none"
    )
    try:
        assert container.wait()["StatusCode"] == 0
        tag = "nexlab-test/alpine:own-nexlab"
        container.commit(*tag.split(":"))
    finally:
        container.remove(force=True)
    caplog.set_level(logging.DEBUG, logger="nexlab.layers")
    try:
        output = tmp_path / "rootfs.ext4"
        build_rootfs(output, agent=sample_agent, image=tag, size="64MiB")
    finally:
        docker_client.images.remove(tag, force=True)
    assert "has its own /nexlab" in caplog.text
    agent = {f.path: f for f in nexlab.audit(output, hash=False).files}["/usr/local/bin/agent"]
    assert (agent.type, agent.mode, agent.uid, agent.size) == ("file", 0o755, 0, sample_agent.stat().st_size)


def test_fast_path_failure_leaves_no_mount(tmp_path: Path, debian_base: str, sample_agent: Path) -> None:
    # 8 MiB cannot hold the base: the extraction fails while the overlay is mounted, and the
    # whole content is still counted through tar's pipe, as through export.
    with pytest.raises(ImageTooSmallError, match=r"8 MiB is too small: the content is .* use --size \d+MiB"):
        build_rootfs(tmp_path / "small.ext4", agent=sample_agent, image=debian_base, size="8MiB")
    assert not _overlays()


def test_a_failed_tar_fails_the_extraction_even_after_a_whole_archive(tmp_path: Path) -> None:
    # GNU tar writes a well-formed end after an unreadable name and exits 2: that must not
    # pass for a complete filesystem.
    (tmp_path / "src" / "etc").mkdir(parents=True)
    (tmp_path / "src" / "etc" / "os-release").write_text("ID=test\n")
    target = tmp_path / "target"
    target.mkdir()
    argv = [*tar_argv(tmp_path / "src"), "etc/missing"]
    with stream(argv) as tar, pytest.raises(CommandError, match="missing"):
        extract(tar, target, as_root=True)
    assert (target / "etc" / "os-release").read_text() == "ID=test\n"  # it did read the stream


def test_tar_reads_only_kept_names_and_never_follows_a_symlink(tmp_path: Path) -> None:
    canary = tmp_path / "host-canary"
    canary.write_text("host\n")
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "escape").symlink_to(canary)
    (src / "proc").mkdir()
    (src / "proc" / "junk").write_text("x")
    target = tmp_path / "target"
    target.mkdir()
    assert "proc" not in tar_argv(src)
    with stream(tar_argv(src)) as tar:
        extract(tar, target, as_root=True)
    assert (target / "etc" / "escape").is_symlink()
    assert not (target / "proc" / "junk").exists()
    assert canary.read_text() == "host\n"


def test_mount_options_refuse_paths_the_kernel_would_split() -> None:
    from nexlab.builder.layers import Unavailable

    assert mount_options(["/a", "/b"]) == "ro,nosuid,nodev,lowerdir=/a:/b"
    with pytest.raises(Unavailable):
        mount_options(["/a:b", "/c"])
    with pytest.raises(Unavailable):
        mount_options([f"/{'x' * 300}/{i}" for i in range(20)])


def test_an_overlay_left_by_a_killed_process_is_reaped(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from nexlab.builder.reaper import reap

    for name in ("lower", "upper"):
        (tmp_path / name / "etc").mkdir(parents=True)
    script = (
        "import sys, time\nfrom nexlab.builder.layers import overlay\n"
        f"with overlay([{str(tmp_path / 'upper')!r}, {str(tmp_path / 'lower')!r}]) as root:\n"
        "    print(root, flush=True)\n    time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    root = child.stdout.readline().strip()
    assert root and any(f" {root} " in line for line in _overlays()), "the overlay is mounted"
    child.kill()
    child.wait(timeout=30)
    time.sleep(0.1)
    assert any(f" {root} " in line for line in _overlays()), "SIGKILL left it"
    removed = reap(docker=False)
    assert any(f"mount {root} of process {child.pid}" in line for line in removed), removed
    assert not any(f" {root} " in line for line in _overlays())
    assert not Path(root).exists()
