"""Boot real built images in real QEMU and see the agent start, or fail for a stated reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from nexlab.boot import BootResult, Outcome, boot, verify_boot
from nexlab.builder.output import sha256_file
from nexlab.errors import BootError
from nexlab.run import run
from tests.conftest import nexlab_cli, require

pytestmark = [pytest.mark.qemu, pytest.mark.root]

# Under TCG on a busy 2-core host the Debian image needs about 70 s to the agent.
SLOW_BOOT = 240.0
QUICK_FAILURE = 90.0


def qemu_processes_with(marker: str) -> list[int]:
    """PIDs of live (not zombie) processes whose command line contains ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if "qemu-system" in cmdline and marker in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def assert_fallback_consistent(result: BootResult) -> None:
    kvm_usable = os.access("/dev/kvm", os.R_OK | os.W_OK)
    if result.accel == "tcg" and kvm_usable:
        assert result.kvm_fallback, "TCG was used although /dev/kvm is usable, and no reason was given"


@pytest.mark.slow
def test_built_image_boots_to_the_agent_and_stays_unmodified(agent_image: Path, tmp_path: Path) -> None:
    before = sha256_file(agent_image)
    log = tmp_path / "console.log"
    marker = f"nexlab.test={uuid.uuid4().hex}"
    done = nexlab_cli("boot", str(agent_image), "--log", str(log), "--append", marker, "--timeout", str(SLOW_BOOT))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agent started" in done.stdout
    assert "Starting agent" in done.stdout
    console = log.read_text()
    assert "OpenRC" in console
    assert "Starting agent" in console
    assert "ERROR" not in console.split("Starting agent", 1)[1].split("INIT: Entering runlevel", 1)[0]
    to_agent = float(done.stdout.split("to agent", 1)[1].split()[0])
    assert 0 < to_agent < SLOW_BOOT
    assert sha256_file(agent_image) == before
    assert qemu_processes_with(marker) == []


@pytest.mark.slow
def test_an_agent_that_exits_is_a_crashed_service(crashing_image: Path, tmp_path: Path) -> None:
    before = sha256_file(crashing_image)
    log = tmp_path / "console.log"
    started = time.monotonic()
    with pytest.raises(BootError) as caught:
        verify_boot(crashing_image, log=log, timeout=SLOW_BOOT)
    error = caught.value
    assert error.exit_code == 1
    assert error.reason == str(Outcome.SERVICE_CRASHED)
    assert "agent failed to start" in str(error)
    assert any("exited during start-up" in line for line in error.console_tail)
    # Decided by the console, not by running into the timeout.
    assert time.monotonic() - started < SLOW_BOOT
    assert "ERROR: agent failed to start" in log.read_text()
    assert sha256_file(crashing_image) == before


@pytest.fixture
def image_without_init(tmp_path: Path) -> Path:
    """An ext4 image with a directory skeleton and a stray file, but no /sbin/init."""
    staging = tmp_path / "staging"
    for directory in ("dev", "proc", "sys", "etc", "sbin", "tmp"):
        (staging / directory).mkdir(parents=True)
    (staging / "etc" / "hostname").write_text("no-init\n")
    image = tmp_path / "no-init.ext4"
    run(["mkfs.ext4", "-q", "-F", "-d", str(staging), str(image), "16M"])
    return image


def test_no_init_fails_fast_with_a_clear_reason(qemu_kernel: object, image_without_init: Path, tmp_path: Path) -> None:
    before = sha256_file(image_without_init)
    log = tmp_path / "console.log"
    done = nexlab_cli("boot", str(image_without_init), "--log", str(log), "--timeout", str(QUICK_FAILURE))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED: no init" in done.stdout
    assert "last console lines:" in done.stdout
    assert "init" in log.read_text()
    assert sha256_file(image_without_init) == before


def test_kernel_without_its_initrd_panics(qemu_kernel, agent_image: Path) -> None:  # type: ignore[no-untyped-def]
    # The cloud kernel has virtio_blk as a module: without the initrd it cannot see /dev/vda.
    result = boot(agent_image, kernel=qemu_kernel.path, machine="q35", timeout=QUICK_FAILURE)
    assert not result.ok
    assert result.outcome is Outcome.NO_ROOT
    assert "Kernel panic" in result.reason
    assert result.initrd is None
    assert result.seconds_to_agent is None
    assert any("Kernel panic" in line for line in result.last_lines)
    assert_fallback_consistent(result)
    assert "FAILED" in str(result) and "Kernel panic" in result._repr_html_()


def test_expect_pattern_is_success(qemu_kernel: object, image_without_init: Path) -> None:
    # --expect decides as soon as its line appears, whatever comes after.
    result = boot(image_without_init, expect=r"Run /init as init process", timeout=QUICK_FAILURE)
    assert result.ok
    assert "Run /init as init process" in result.reason
    assert result.seconds_to_agent is not None and 0 < result.seconds_to_agent < result.seconds


def test_a_compressed_image_boots_from_a_temporary_copy(qemu_kernel: object, image_without_init: Path) -> None:
    # What `nexlab build -o rootfs.ext4.zst` writes boots too, from a plain copy made beside it.
    import zstandard

    packed = image_without_init.with_name("no-init.ext4.zst")
    with image_without_init.open("rb") as source, packed.open("wb") as sink:
        zstandard.ZstdCompressor().copy_stream(source, sink)
    before = sorted(p.name for p in packed.parent.iterdir())
    result = boot(packed, expect=r"Run /init as init process", timeout=QUICK_FAILURE)
    assert result.ok, result.reason
    assert result.image == packed.absolute()
    assert sorted(p.name for p in packed.parent.iterdir()) == before  # the copy is gone


def test_ctrl_c_kills_qemu(qemu_kernel: object, image_without_init: Path) -> None:
    marker = f"nexlab.test={uuid.uuid4().hex}"
    exe = Path(sys.executable).parent / "nexlab"
    child = subprocess.Popen(
        [str(exe), "boot", str(image_without_init), "--append", marker, "--accel", "tcg"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not qemu_processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert qemu_processes_with(marker), "QEMU did not start"
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, stderr
    assert "interrupted" in stderr
    assert qemu_processes_with(marker) == []


def test_sigkill_of_nexlab_boot_kills_qemu(qemu_kernel: object, image_without_init: Path) -> None:
    marker = f"nexlab.test={uuid.uuid4().hex}"
    exe = Path(sys.executable).parent / "nexlab"
    child = subprocess.Popen(
        [str(exe), "boot", str(image_without_init), "--append", marker, "--accel", "tcg", "--timeout", "120"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not qemu_processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert qemu_processes_with(marker), "QEMU did not start"
        child.kill()  # SIGKILL: no clean-up code of nexlab runs
        child.wait(timeout=10)
        deadline = time.monotonic() + 5
        while qemu_processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert qemu_processes_with(marker) == [], "QEMU outlived a SIGKILLed nexlab boot"
    finally:
        for pid in qemu_processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_a_silent_kvm_guest_is_given_up_quickly(qemu_kernel, image_without_init: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Nested KVM here runs the BIOS and then hangs with the kernel silent (seen with
    # QEMU's default CPU model); the probe must end such a VM within its deadline.
    from nexlab.boot.boot import KVM_START_DEADLINE, _attempt
    from nexlab.boot.qemu import Accel, Machine, VmSpec, create_overlay
    from nexlab.progress import LoggingProgress

    require(os.access("/dev/kvm", os.R_OK | os.W_OK), "read-write access to /dev/kvm")
    spec = VmSpec(
        kernel=qemu_kernel,
        disk=create_overlay(image_without_init, tmp_path),
        cmdline="console=ttyS0 panic=1 root=/dev/vda",
        memory_mib=256,
        accel=Accel.KVM,
        machine=Machine.Q35,
        cpu="qemu64",
    )
    started = time.monotonic()
    attempt = _attempt(spec, tmp_path, None, QUICK_FAILURE, True, lambda text: None, LoggingProgress())
    seconds = time.monotonic() - started
    if attempt.kvm_gave_up:
        assert seconds < KVM_START_DEADLINE + 10
        assert "KVM" in attempt.why
    else:  # a host where KVM works: the kernel got going and the boot was decided on the console
        assert attempt.verdict is not None or "kernel printed nothing" not in attempt.why


def test_firecracker_style_vmlinux_on_microvm(pvh_vmlinux: Path, qemu_kernel, image_without_init: Path) -> None:  # type: ignore[no-untyped-def]
    # An ELF vmlinux boots through its PVH entry; microvm finds the disk through ACPI (virtio-mmio).
    from nexlab.boot.kernel import KernelFormat, choose_kernel

    assert choose_kernel(pvh_vmlinux, None).format is KernelFormat.ELF_PVH
    result = boot(image_without_init, kernel=pvh_vmlinux, initrd=qemu_kernel.initrd, machine="microvm",
                  timeout=QUICK_FAILURE)  # fmt: skip
    assert result.outcome is Outcome.NO_INIT, result.reason
    assert result.machine == "microvm,acpi=on"
    assert any("EXT4-fs (vda): mounted" in line for line in result.last_lines)
