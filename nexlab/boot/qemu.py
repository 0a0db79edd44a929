"""QEMU as a Firecracker-like VM: its command line, and the child process that always dies.

The VM has one vCPU, no graphics, no network (unless asked), a virtio-blk root
disk at ``/dev/vda`` and the serial console ``ttyS0`` on QEMU's stdout, which
nexlab reads line by line. The disk is a qcow2 overlay on the image, so the
guest's writes never reach the image.

QEMU runs in its own process group: on exit, a failure or Ctrl-C the whole
group gets SIGTERM, then SIGKILL, so no VM outlives the check; and it has a
parent-death signal, so it dies with nexlab even when nexlab is SIGKILLed.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nexlab.boot.kernel import Kernel
from nexlab.run import run, spawn, terminate

log = logging.getLogger("nexlab.boot")

QEMU = "qemu-system-x86_64"
#: The QEMU that emulates each CPU (Debian: qemu-system-x86, qemu-system-arm).
QEMUS = {"x86_64": QEMU, "aarch64": "qemu-system-aarch64"}
_KILL_GRACE_SECONDS = 3.0
#: The end of a getty's prompt ("nex login: "), which no newline follows.
_PROMPT = b"login:"


class Accel(enum.StrEnum):
    KVM = "kvm"
    TCG = "tcg"


class Machine(enum.StrEnum):
    #: Firecracker's model: no PCI, no firmware tables beyond ACPI, virtio-mmio devices.
    MICROVM = "microvm"
    #: A minimal PC (no default devices), for when microvm is not reliable.
    Q35 = "q35"
    #: arm64's generic board: PL011 serial (ttyAMA0), virtio-mmio slots, a device tree.
    VIRT = "virt"

    def qemu_machine(self, kernel: Kernel) -> str:
        if self is Machine.VIRT:
            return "virt"
        if self is Machine.MICROVM:
            # Without an initrd the kernel must find virtio-mmio on its own:
            # with ACPI off QEMU adds virtio_mmio.device= to the command line,
            # which Firecracker kernels (VIRTIO_MMIO_CMDLINE_DEVICES) read. With
            # an initrd (Debian's kernels lack that option) ACPI describes them.
            return f"microvm,acpi={'on' if kernel.initrd else 'off'}"
        return "q35"

    @property
    def block_device(self) -> str:
        return "virtio-blk-pci" if self is Machine.Q35 else "virtio-blk-device"

    @property
    def net_device(self) -> str:
        return "virtio-net-pci" if self is Machine.Q35 else "virtio-net-device"

    @property
    def console(self) -> str:
        return "ttyAMA0" if self is Machine.VIRT else "ttyS0"


@dataclass(frozen=True)
class VmSpec:
    kernel: Kernel
    disk: Path
    cmdline: str
    memory_mib: int
    accel: Accel
    machine: Machine
    cpus: int = 1
    network: bool = False
    #: QEMU's -cpu; by default the host's CPU under KVM, everything TCG can emulate otherwise.
    cpu: str | None = None


def argv(spec: VmSpec) -> list[str]:
    args = [
        QEMUS[spec.kernel.arch],
        "-nodefaults",
        "-no-user-config",
        "-display", "none",
        "-monitor", "none",
        "-no-reboot",  # panic=1 / reboot=k then end QEMU instead of looping
        "-machine", spec.machine.qemu_machine(spec.kernel),
        "-accel", str(spec.accel),
        "-cpu", spec.cpu or ("host" if spec.accel is Accel.KVM else "max"),
        "-smp", str(spec.cpus),
        "-m", f"{spec.memory_mib}M",
        "-kernel", str(spec.kernel.path),
        "-append", spec.cmdline,
        "-serial", "stdio",
        "-drive", f"id=root,file={spec.disk},format=qcow2,if=none,cache=unsafe",
        "-device", f"{spec.machine.block_device},drive=root",
    ]  # fmt: skip
    if spec.kernel.initrd is not None:
        args += ["-initrd", str(spec.kernel.initrd)]
    if spec.network:
        args += ["-netdev", "user,id=net0", "-device", f"{spec.machine.net_device},netdev=net0"]
    return args


def create_overlay(image: Path, directory: Path) -> Path:
    """A qcow2 file in ``directory`` whose reads fall through to ``image`` and whose writes stay in it."""
    overlay = directory / "overlay.qcow2"
    overlay.unlink(missing_ok=True)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.absolute()), "-F", "raw", str(overlay)])
    return overlay


class Vm:
    """A running QEMU: its console lines arrive on a queue filled by a reader thread."""

    #: What ``next_line`` returns when QEMU has closed its console (it exited).
    EOF = None

    def __init__(self, process: subprocess.Popen[bytes], stderr_path: Path) -> None:
        self.process = process
        self._stderr_path = stderr_path
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="nexlab-console", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        pending = b""
        while chunk := os.read(fd, 65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._lines.put(line.decode("utf-8", "replace") + "\n")
            if pending.rstrip(b" ").endswith(_PROMPT):
                # A getty's prompt ends no line, and it is how a booted system
                # says so: hand it over now rather than with the next line.
                self._lines.put(pending.decode("utf-8", "replace"))
                pending = b""
        if pending:
            self._lines.put(pending.decode("utf-8", "replace"))
        self._lines.put(Vm.EOF)

    def next_line(self, timeout: float) -> str | None:
        """The next console line; ``Vm.EOF`` when QEMU is gone; ``queue.Empty`` after ``timeout``."""
        return self._lines.get(timeout=max(timeout, 0.0))

    def close(self) -> None:
        # QEMU is dead by now, so the reader sees end-of-file and ends.
        self._reader.join(timeout=_KILL_GRACE_SECONDS)
        if self.process.stdout is not None and not self._reader.is_alive():
            self.process.stdout.close()

    def stderr(self) -> str:
        try:
            return self._stderr_path.read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def running(spec: VmSpec, workdir: Path) -> Iterator[Vm]:
    """Start QEMU for ``spec``; ``spawn`` kills its process group on the way out."""
    stderr_path = workdir / f"qemu-{spec.accel}.stderr"
    with stderr_path.open("wb") as stderr, spawn(argv(spec), stderr=stderr, grace=_KILL_GRACE_SECONDS) as process:
        vm = Vm(process, stderr_path)
        try:
            yield vm
        finally:
            # ``spawn`` has not killed QEMU yet: end it first, so the reader sees end-of-file.
            terminate(process, grace=_KILL_GRACE_SECONDS)
            vm.close()
