"""arm64 images boot in qemu-system-aarch64 (virt, TCG on an x86 host) with the kernel `make kernels` provisions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nexlab.boot import Outcome, boot
from nexlab.boot.boot import image_architecture
from nexlab.errors import InputError
from nexlab.run import run
from tests.boot.arm64 import busybox_image
from tests.conftest import SAMPLE_AGENT, nexlab_cli, require

pytestmark = [pytest.mark.qemu, pytest.mark.root]


@pytest.fixture(scope="session")
def arm64_kernel(qemu_kernel):  # type: ignore[no-untyped-def]
    """The provisioned arm64 cloud kernel and our initrd, with qemu-system-aarch64."""
    from nexlab.boot.kernel import kernels_dir, newest_kernel

    require(shutil.which("qemu-system-aarch64") is not None, "qemu-system-aarch64 (apt-get install qemu-system-arm)")
    kernel = newest_kernel(kernels_dir() / "arm64", "arm64")
    require(kernel is not None, f"an arm64 kernel in {kernels_dir() / 'arm64'} (make kernels)")
    return kernel


@pytest.fixture(scope="session")
def arm64_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("arm64")


@pytest.fixture(scope="session")
def arm64_image(arm64_kernel, arm64_images: Path) -> Path:  # type: ignore[no-untyped-def]
    return busybox_image(arm64_kernel.initrd, arm64_images, SAMPLE_AGENT)


def test_arm64_image_boots_to_the_agent_under_tcg(arm64_image: Path, arm64_kernel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert image_architecture(arm64_image) == "aarch64"
    result = boot(arm64_image, log=tmp_path / "console.log")
    assert result.ok, (result.reason, result.last_lines)
    assert result.outcome is Outcome.AGENT_STARTED
    assert (result.machine, result.accel) == ("virt", "tcg")
    assert result.kernel == arm64_kernel.path and result.initrd == arm64_kernel.initrd
    assert "console=ttyAMA0" in result.cmdline
    console = (tmp_path / "console.log").read_text()
    # The image's getty is on ttyS0 (Firecracker's); our initramfs points ttyS0 at the PL011,
    # so it gives one login prompt instead of respawning on a port without a UART.
    assert console.count("login:") == 1, console[-2000:]
    assert result.seconds_to_agent is not None and result.seconds_to_agent < 120


def test_arm64_agent_that_dies_fails_fast(arm64_kernel, arm64_images: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    agent = tmp_path / "crashing-agent.sh"
    agent.write_text('#!/bin/sh\necho "agent: cannot reach the control plane" >&2\nexit 1\n')
    image = busybox_image(arm64_kernel.initrd, arm64_images, agent, name="crashing.ext4")
    result = boot(image)
    assert result.outcome is Outcome.SERVICE_CRASHED, (result.reason, result.last_lines)
    assert result.seconds < 120


def test_arm64_boot_without_agent_start_fails_fast(arm64_kernel, arm64_images: Path) -> None:  # type: ignore[no-untyped-def]
    image = busybox_image(arm64_kernel.initrd, arm64_images, SAMPLE_AGENT, name="no-agent.ext4")
    # The same image with the agent's inittab line gone: booted (the getty's prompt), no agent.
    run(["debugfs", "-w", "-R", "rm /etc/inittab", str(image)])
    inittab = arm64_images / "inittab"
    inittab.write_text(
        "::sysinit:/usr/local/sbin/agent-service sysinit\nttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n"
    )
    run(["debugfs", "-w", "-R", f"write {inittab} /etc/inittab", str(image)])
    result = boot(image)
    assert result.outcome is Outcome.NO_AGENT, (result.reason, result.last_lines)
    assert result.seconds < 120


def test_a_kernel_for_another_cpu_is_refused(arm64_image: Path, arm64_kernel, qemu_kernel) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=r"amd64 kernel .* image is for arm64"):
        boot(arm64_image, kernel=qemu_kernel.path, initrd=qemu_kernel.initrd)
    done = nexlab_cli("boot", str(arm64_image), "--kernel", str(qemu_kernel.path))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) <= 2, done.stderr
    assert "amd64 kernel" in done.stderr and "Traceback" not in done.stderr
    # and the other way round: an x86_64 image given the arm64 kernel
    done = nexlab_cli("boot", str(arm64_image), "--arch", "amd64", "--kernel", str(arm64_kernel.path))
    assert done.returncode == 2 and "arm64 kernel" in done.stderr, done.stderr


def test_missing_arm64_kernel_says_run_make(arm64_image: Path, tmp_path: Path) -> None:
    done = nexlab_cli("boot", str(arm64_image), env={"NEXLAB_KERNELS": str(tmp_path / "none")})
    assert done.returncode == 2, done.stderr
    assert "no arm64 kernel" in done.stderr and "make kernels" in done.stderr and "Traceback" not in done.stderr


def test_kvm_for_an_emulated_cpu_is_refused(arm64_image: Path, arm64_kernel) -> None:  # type: ignore[no-untyped-def]
    import platform

    require(platform.machine() != "aarch64", "optional: an x86 host")
    with pytest.raises(InputError, match="kvm"):
        boot(arm64_image, accel="kvm")
    with pytest.raises(InputError, match="virt"):
        boot(arm64_image, machine="q35")
