"""``boot()``: start an image in a throwaway VM and watch it reach the agent.

The recipe: check the inputs, make a copy-on-write overlay, start QEMU with KVM
if ``/dev/kvm`` is usable, and read the serial console until a line decides
the boot or the time is up. Nested or broken KVM often hangs without a word
instead of failing, so a KVM VM whose kernel prints nothing within a few
seconds (or that exits at once) is killed and the boot restarts with TCG.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import queue
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nexlab import tempdirs
from nexlab.boot import kernel as kernels
from nexlab.boot.console import ConsoleWatcher, Outcome, Verdict, clean
from nexlab.boot.qemu import Accel, Machine, VmSpec, create_overlay, running
from nexlab.boot.result import BootResult
from nexlab.errors import BootError, InputError
from nexlab.image import elf
from nexlab.image.compressed import compression_of, plain_image
from nexlab.image.reader import open_image
from nexlab.image.superblock import check_magic
from nexlab.progress import Progress, or_logging

DEFAULT_TIMEOUT = 180.0
#: How much longer a boot may take when QEMU emulates another CPU (arm64 on x86 under TCG).
FOREIGN_TIMEOUT_FACTOR = 3.0
DEFAULT_MEMORY_MIB = 512
#: Seconds a KVM guest gets to print its first kernel line before we fall back to TCG.
KVM_START_DEADLINE = 5.0
#: The files whose ELF machine says an image's CPU, first found wins.
ARCH_WITNESSES = ("/sbin/init", "/usr/local/bin/agent", "/bin/sh", "/bin/busybox")
#: Seconds of console kept after a failure line: the panic's details follow it.
FAILURE_GRACE = 1.0
TAIL_LINES = 25
BASE_CMDLINE = "console={console} reboot=k panic=1 root=/dev/vda rw"
_POLL_SECONDS = 0.5


@dataclass
class _Attempt:
    verdict: Verdict | None
    #: Why the attempt ended without a verdict (timeout, QEMU gone, KVM silent).
    why: str
    kvm_gave_up: bool
    seconds_to_agent: float | None
    tail: deque[str]


def boot(
    image: Path | str,
    *,
    kernel: Path | str | None = None,
    initrd: Path | str | None = None,
    expect: str | None = None,
    timeout: float | None = None,
    memory: int = DEFAULT_MEMORY_MIB,
    log: Path | str | None = None,
    accel: str = "auto",
    machine: str = "auto",
    append: str = "",
    network: bool = False,
    arch: str = "auto",
    progress: Progress | None = None,
) -> BootResult:
    """Boot ``image`` and return how far it got; the image is never written.

    Success is OpenRC starting the ``agent`` service (and it staying up), or a
    console line matching ``expect``. ``timeout`` counts from the start of the
    VM that boots (a failed KVM attempt is not charged). ``log`` keeps the
    console. ``accel`` is ``auto``, ``kvm`` or ``tcg``; ``machine`` is
    ``auto`` (microvm with KVM or a bare kernel, else q35), ``microvm`` or
    ``q35`` (x86_64), ``virt`` for arm64. ``arch`` is ``auto`` (the ELF
    machine of the image's ``/sbin/init``, see ``image_architecture``),
    ``amd64`` or ``arm64``; a foreign CPU runs under TCG, and its default
    ``timeout`` is ``FOREIGN_TIMEOUT_FACTOR`` times longer.
    """
    started = time.monotonic()
    given = Path(image)
    if not given.is_file() or compression_of(given) is None:
        return _boot(check_image(given), kernel, initrd, expect, timeout, memory, log, accel, machine, append,
                     network, arch, progress, started)  # fmt: skip
    # A .gz/.zst image boots from a decompressed temporary copy beside it (it may be big);
    # the result names the file the user gave.
    with plain_image(given, progress=progress, workdir=given.absolute().parent) as plain:
        result = _boot(check_image(plain), kernel, initrd, expect, timeout, memory, log, accel, machine, append,
                       network, arch, progress, started)  # fmt: skip
    return dataclasses.replace(result, image=given.absolute())


def _boot(
    image: Path,
    kernel: Path | str | None,
    initrd: Path | str | None,
    expect: str | None,
    timeout: float | None,
    memory: int,
    log: Path | str | None,
    accel: str,
    machine: str,
    append: str,
    network: bool,
    arch: str,
    progress: Progress | None,
    started: float,
) -> BootResult:
    cpu = image_architecture(image) if arch == "auto" else kernels.architecture(arch)
    chosen = kernels.choose_kernel(Path(kernel) if kernel else None, Path(initrd) if initrd else None, cpu)
    foreign = cpu != kernels.architecture(platform.machine()) if platform.machine() in kernels.ARCHES else True
    accels = _accels(accel, foreign)
    _machine(machine, accels[0], chosen)  # reject a bad name before anything starts
    if timeout is None:
        timeout = DEFAULT_TIMEOUT * (FOREIGN_TIMEOUT_FACTOR if foreign else 1)
    if expect is not None:
        try:
            re.compile(expect)
        except re.error as exc:
            raise InputError(f"--expect {expect!r} is not a regular expression: {exc}") from exc
    if timeout <= 0 or memory < 64:
        raise InputError("the timeout must be positive and the memory at least 64 MiB")
    progress = or_logging(progress)
    kvm_fallback = None if accel != "auto" or Accel.KVM in accels else (
        f"the host cannot run {cpu} under KVM" if foreign else "no read-write access to /dev/kvm")  # fmt: skip
    with progress.step("boot", f"{image} with {chosen.path.name}") as step:
        with tempdirs.directory("boot") as workdir, _console_sink(log) as sink:
            for index, current in enumerate(accels):
                shape = _machine(machine, current, chosen)
                spec = VmSpec(
                    kernel=chosen,
                    disk=create_overlay(image, workdir),
                    cmdline=_cmdline(append, shape, current),
                    memory_mib=memory,
                    accel=current,
                    machine=shape,
                    network=network,
                )
                probing = current is Accel.KVM and index + 1 < len(accels)
                attempt = _attempt(spec, workdir, expect, timeout, probing, sink, progress)
                if attempt.kvm_gave_up:
                    kvm_fallback = attempt.why
                    sink(f"--- nexlab: {attempt.why}; booting again with TCG ---\n")
                    progress.log_line(f"KVM: {attempt.why}; falling back to TCG")
                    continue
                break
        return step.done(_result(image, spec, attempt, log, time.monotonic() - started, kvm_fallback))


def verify_boot(image: Path | str, **options: Any) -> BootResult:
    """``boot()`` that raises ``BootError`` (reason and last console lines) unless the agent started."""
    result = boot(image, **options)
    if not result.ok:
        raise BootError(f"{result.image} did not boot to the agent: {result.reason}", reason=str(result.outcome),
                        console_tail=list(result.last_lines))  # fmt: skip
    return result


def check_image(image: Path) -> Path:
    """``image`` as an absolute path, if it is a readable ext2/3/4 filesystem image."""
    image = image.absolute()
    if not image.is_file():
        raise InputError(f"image {image} does not exist or is not a file")
    try:
        fd = os.open(image, os.O_RDONLY)
    except OSError as exc:
        raise InputError(f"cannot read image {image}: {exc.strerror}") from exc
    try:
        check_magic(fd, image)
    finally:
        os.close(fd)
    return image


def image_architecture(image: Path) -> str:
    """The CPU an image is for (``x86_64``, ``aarch64``): the ELF machine of its init, else its agent or shell.

    An image with none of them, or with ELF files for neither, is taken as
    the host's.
    """
    with open_image(image) as fs:
        for path in ARCH_WITNESSES:
            machine = elf.elf_machine(fs.read_path(path, limit=elf.HEAD))
            if machine in kernels.ARCHES:
                return kernels.ARCHES[machine]
    return kernels.architecture(platform.machine()) if platform.machine() in kernels.ARCHES else "x86_64"


def _accels(accel: str, foreign: bool = False) -> list[Accel]:
    try:
        wanted = None if accel == "auto" else Accel(accel)
    except ValueError:
        raise InputError(f"unknown accelerator {accel!r}: use auto, kvm or tcg") from None
    if wanted is Accel.KVM and foreign:
        raise InputError("--accel kvm runs only the host's CPU: this image is for another one (use tcg or auto)")
    if wanted is not None:
        return [wanted]
    if foreign:
        return [Accel.TCG]
    kvm_usable = os.access("/dev/kvm", os.R_OK | os.W_OK)
    return [Accel.KVM, Accel.TCG] if kvm_usable else [Accel.TCG]


def _machine(machine: str, accel: Accel, kernel: kernels.Kernel) -> Machine:
    if kernel.arch == "aarch64":
        # arm64 has one board for a kernel and a virtio disk: virt (Firecracker's own arm64 VM is like it).
        if machine not in ("auto", "virt"):
            raise InputError(f"machine {machine!r} is x86 only: an arm64 image boots on virt (or auto)")
        return Machine.VIRT
    if machine != "auto":
        try:
            chosen = Machine(machine)
        except ValueError:
            raise InputError(f"unknown machine {machine!r}: use auto, microvm or q35") from None
        if chosen is Machine.VIRT:
            raise InputError("machine 'virt' is for arm64 images; an x86_64 image boots on microvm or q35")
        return chosen
    # microvm is Firecracker's shape, and a bare kernel (no initrd) finds its
    # disk only there. Under TCG, though, its missing HPET and PM timer make
    # the kernel's clock calibration hang now and then (seen here, 1 boot in
    # 4); q35 has both and needs no guess at the TSC rate (see _cmdline).
    if accel is Accel.KVM or kernel.initrd is None:
        return Machine.MICROVM
    return Machine.Q35


def _cmdline(append: str, machine: Machine, accel: Accel) -> str:
    words = [BASE_CMDLINE.format(console=machine.console)]
    if machine is Machine.MICROVM and accel is Accel.TCG and (khz := _host_tsc_khz()):
        # microvm has no HPET or PM timer, and under TCG the kernel's TSC
        # calibration against the PIT fails now and then and the boot hangs
        # (seen here, 1 in 4). TCG's TSC runs at the host's rate: tell it.
        words.append(f"tsc_early_khz={khz}")
    words.append(append)
    return " ".join(word for word in words if word)


def _host_tsc_khz() -> int | None:
    """The host's TSC rate, when it is constant (``constant_tsc``): else None."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = re.search(r"^flags\s*:(.*)$", cpuinfo, re.MULTILINE)
    mhz = re.search(r"^cpu MHz\s*:\s*([0-9.]+)", cpuinfo, re.MULTILINE)
    if not flags or not mhz or "constant_tsc" not in flags.group(1).split():
        return None
    return int(float(mhz.group(1)) * 1000)


def _attempt(
    spec: VmSpec,
    workdir: Path,
    expect: str | None,
    timeout: float,
    probing: bool,
    sink: Callable[[str], None],
    progress: Progress,
) -> _Attempt:
    watcher = ConsoleWatcher(expect=expect)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with running(spec, workdir) as vm:
        start = time.monotonic()
        end = start + timeout
        probe_end = start + KVM_START_DEADLINE

        def ended(why: str, *, kvm_gave_up: bool = False) -> _Attempt:
            return _Attempt(None, why, kvm_gave_up, None, tail)

        while True:
            now = time.monotonic()
            verdict = watcher.poll(now)
            if verdict is not None:
                break
            if probing and not watcher.kernel_started and now >= probe_end:
                return ended(f"KVM started no kernel within {KVM_START_DEADLINE:.0f} s", kvm_gave_up=True)
            if now >= end:
                silent = "" if watcher.kernel_started else " (the kernel printed nothing)"
                return ended(f"no agent start within {timeout:.0f} s{silent}")
            try:
                line = vm.next_line(min(_POLL_SECONDS, end - now))
            except queue.Empty:
                continue
            if line is None:
                vm.process.wait()
                status = vm.process.returncode
                errors = _first_error(vm.stderr())
                if probing and not watcher.kernel_started:
                    return ended(f"QEMU with KVM exited ({status}) before the kernel started: {errors}",
                                 kvm_gave_up=True)  # fmt: skip
                if status != 0 and errors:
                    return ended(f"QEMU exited with status {status}: {errors}")
                return ended("the VM stopped (the guest rebooted or powered off) before the agent started")
            _keep(line, sink, tail, progress)
            verdict = watcher.feed(line, time.monotonic())
            if verdict is not None:
                break
        if not verdict.outcome.ok:
            _drain(vm.next_line, FAILURE_GRACE, sink, tail, progress)
    seconds = watcher.started_at - start if watcher.started_at is not None else None
    return _Attempt(verdict, "", False, seconds, tail)


def _first_error(stderr: str) -> str:
    """QEMU's own error line ("...: error: ..."), else its last line; warnings are noise."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()] or lines[-1:]
    return errors[0][:200] if errors else ""


def _keep(line: str, sink: Callable[[str], None], tail: deque[str], progress: Progress) -> None:
    text = clean(line)
    sink(text + "\n")
    if text.strip():
        tail.append(text)
        progress.log_line(text)


def _drain(
    next_line: Callable[[float], str | None],
    seconds: float,
    sink: Callable[[str], None],
    tail: deque[str],
    progress: Progress,
) -> None:
    """Keep the console lines that follow a failure for a moment: the panic's details."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            line = next_line(left)
        except queue.Empty:
            return
        if line is None:
            return
        _keep(line, sink, tail, progress)


@contextlib.contextmanager
def _console_sink(log: Path | str | None) -> Iterator[Callable[[str], None]]:
    if log is None:
        yield lambda text: None
        return
    path = Path(log)
    try:
        file: IO[str] = path.open("w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the console log {path}: {exc.strerror}") from exc
    with file:

        def write(text: str) -> None:
            file.write(text)
            file.flush()

        yield write


def _result(
    image: Path, spec: VmSpec, attempt: _Attempt, log: Path | str | None, seconds: float, kvm_fallback: str | None
) -> BootResult:
    if attempt.verdict is not None:
        outcome = attempt.verdict.outcome
        reason = f"{outcome}: {attempt.verdict.line.strip()}"
    elif attempt.why.startswith("no agent start"):
        outcome, reason = Outcome.TIMEOUT, attempt.why
    else:
        outcome, reason = Outcome.VM_STOPPED, attempt.why
    return BootResult(
        image=image,
        outcome=outcome,
        reason=reason,
        seconds_to_agent=attempt.seconds_to_agent if outcome.ok else None,
        seconds=seconds,
        accel=str(spec.accel),
        machine=spec.machine.qemu_machine(spec.kernel),
        kernel=spec.kernel.path,
        initrd=spec.kernel.initrd,
        cmdline=spec.cmdline,
        memory_mib=spec.memory_mib,
        console_log=Path(log).absolute() if log is not None else None,
        last_lines=tuple(attempt.tail),
        kvm_fallback=kvm_fallback,
    )
