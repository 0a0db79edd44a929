"""The reaper: what a SIGKILLed build leaves is removed by the next run, and a live build is never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builder.test_cli_errors import (
    NOISY_SCRIPT,
    SLEEPING_SCRIPT,
    leftovers,
    run_id,
    start_scripted_build,
    wait_until_mounted,
)
from tests.conftest import REPO, SAMPLE_AGENT, nexlab_cli


def _start_slow_build(tmp_path: Path, image: str, *extra: str) -> subprocess.Popen[str]:
    """A build whose setup container sleeps once it is running; returns when it got there."""
    return start_scripted_build(tmp_path, image, SLEEPING_SCRIPT, *extra)


def _start_extracting_mount_build(tmp_path: Path, image: str) -> subprocess.Popen[str]:
    """A mount build caught while the container's export fills the mounted image: the moment
    everything exists at once (container, loop device, mount, partial output)."""
    child = start_scripted_build(tmp_path, image, NOISY_SCRIPT)
    try:
        wait_until_mounted(tmp_path, child, setup="exited")
    except AssertionError:
        child.kill()
        raise
    return child


def _staging_dirs(pid: int) -> list[Path]:
    import tempfile

    return [p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith(f"nexlab-staging-nx{pid}-")]


def _containers(directory: Path) -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=org.nexlab.run={run_id(directory)}"],
        capture_output=True,
        text=True,
    ).stdout.split()


def test_a_sigkilled_mount_build_is_reaped_by_the_next_run(tmp_path: Path, debian_base: str) -> None:
    child = _start_extracting_mount_build(tmp_path, debian_base)
    child.kill()
    child.wait(timeout=30)
    left = leftovers(tmp_path)
    assert any(item.startswith("loop") for item in left) and any(item.startswith("container") for item in left)
    cleaned = nexlab_cli("clean")
    assert cleaned.returncode == 0, cleaned.stderr
    for kind in ("container", "mount", "loop device", "partial output"):
        assert f"removed {kind}" in cleaned.stderr, cleaned.stderr
    assert f"of process {child.pid}" in cleaned.stderr
    assert leftovers(tmp_path) == []


def test_a_sigkilled_reproducible_build_is_reaped(tmp_path: Path, debian_base: str) -> None:
    child = _start_slow_build(tmp_path, debian_base, "--reproducible", "--source-date-epoch", "1700000000")
    staging = _staging_dirs(child.pid)
    assert staging, "the build stages in the temporary directory"
    child.kill()
    child.wait(timeout=30)
    assert _containers(tmp_path)
    # The next build (here one that fails at once on its input) reaps first.
    again = nexlab_cli("build", "--agent", str(tmp_path / "missing"), "-o", str(tmp_path / "rootfs.ext4"))
    assert "removed container" in again.stderr and "removed staging directory" in again.stderr, again.stderr
    assert not any(path.exists() for path in staging)
    assert _containers(tmp_path) == [] and leftovers(tmp_path) == []


@pytest.mark.timeout(300)
def test_clean_never_touches_a_live_build(tmp_path: Path, debian_base: str) -> None:
    import signal

    child = _start_extracting_mount_build(tmp_path, debian_base)
    # Frozen, it is alive and its container, loop device, mount and partial file stay as they are.
    child.send_signal(signal.SIGSTOP)
    try:
        before = leftovers(tmp_path)
        assert any(item.startswith("loop") for item in before) and any(item.startswith("mount") for item in before)
        cleaned = nexlab_cli("clean")
        assert cleaned.returncode == 0
        assert f"of process {child.pid}" not in cleaned.stderr
        assert leftovers(tmp_path) == before
    finally:
        child.send_signal(signal.SIGCONT)
        child.send_signal(signal.SIGINT)
        assert child.stderr is not None
        rest = child.stderr.read()
        assert child.wait(timeout=60) == 130, rest
    assert leftovers(tmp_path) == []


def test_repeated_ctrl_c_during_clean_up_leaves_nothing(tmp_path: Path, debian_base: str) -> None:
    child = _start_slow_build(tmp_path, debian_base, "--reproducible", "--source-date-epoch", "1700000000")
    staging = _staging_dirs(child.pid)
    assert staging
    # Ctrl-C, then Ctrl-C again and again while the container, staging tree and partial file go.
    deadline = time.monotonic() + 60
    while child.poll() is None and time.monotonic() < deadline:
        child.send_signal(2)
        time.sleep(0.05)
    assert child.stderr is not None
    rest = child.stderr.read()
    assert child.wait(timeout=10) == 130, rest
    assert "cleaned up" in rest and "Traceback" not in rest, rest
    assert not any(path.exists() for path in staging)
    assert leftovers(tmp_path) == []


_SIGNAL_AFTER_RENAME = """
import os, signal, sys
real_replace = os.replace
def replace_then_interrupt(source, destination):
    real_replace(source, destination)
    if str(destination).endswith(".ext4"):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C the moment the image is in place
os.replace = replace_then_interrupt
from nexlab.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_signal_after_the_output_is_replaced_is_success(tmp_path: Path, debian_base: str) -> None:
    out = tmp_path / "rootfs.ext4"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _SIGNAL_AFTER_RENAME,
            "build",
            "--agent",
            str(SAMPLE_AGENT),
            "--image",
            debian_base,
            "--size",
            "200MiB",
            "--reproducible",
            "--source-date-epoch",
            "1700000000",
            "-o",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "NEXLAB_RUN_ID": run_id(tmp_path)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "it is complete" in done.stderr
    from nexlab.builder.manifest import BuildManifest, manifest_path
    from nexlab.builder.output import sha256_file

    assert BuildManifest.read(manifest_path(out)).image_sha256 == sha256_file(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep", "rootfs.ext4", "rootfs.ext4.manifest.json"] or (
        sorted(p.name for p in tmp_path.iterdir()) == ["rootfs.ext4", "rootfs.ext4.manifest.json"]
    )


def test_staging_in_memory_is_capped_by_the_requested_size(tmp_path: Path, debian_base: str) -> None:
    import contextlib
    import shutil
    import threading

    script = tmp_path / "big.sh"
    script.write_text("head -c 1073741824 /dev/zero > /usr/big\n")  # 1 GiB of content for a 64 MiB image
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for line in Path("/proc/mounts").read_text().splitlines():
                source, point, fstype = line.split()[:3]
                if source == "nexlab-staging" and fstype == "tmpfs" and f"nx{child_pid[0]}-" in point:
                    with contextlib.suppress(OSError):
                        peak[0] = max(peak[0], shutil.disk_usage(point).used)
            time.sleep(0.05)

    child_pid = [0]
    exe = Path(sys.executable).with_name("nexlab")
    child = subprocess.Popen(
        [
            str(exe),
            "build",
            "--agent",
            str(SAMPLE_AGENT),
            "--image",
            debian_base,
            "--size",
            "64MiB",
            "--script",
            str(script),
            "--reproducible",
            "-o",
            str(tmp_path / "rootfs.ext4"),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NEXLAB_RUN_ID": run_id(tmp_path)},
    )
    child_pid[0] = child.pid
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = child.communicate(timeout=600)
    done.set()
    sampler.join()
    assert child.returncode == 2 and "Traceback" not in stderr, stderr
    assert "64.0 MiB is too small" in stderr or "64 MiB is too small" in stderr, stderr
    assert 0 < peak[0] <= 64 * 2**20, f"the staging tmpfs held {peak[0]} bytes"
