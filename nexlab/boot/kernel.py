"""The kernel a boot check starts: a Debian cloud kernel for the image's CPU, or one the user gives.

For x86_64 that is the host's ``/boot/vmlinuz-*-cloud-amd64``; for aarch64 the
arm64 cloud kernel ``make kernels`` fetches into ``kernels_dir()/arm64`` with
an initramfs of ours (``nexlab.boot.provision``).

Two formats boot with QEMU's ``-kernel``: a bzImage (``/boot/vmlinuz-*``, via
the x86 boot protocol) and an uncompressed ELF ``vmlinux`` (Firecracker's
format), which QEMU only starts through the PVH entry point, so the ELF must
carry a PVH note (``CONFIG_PVH=y``). We check that up front: QEMU's own error
for an ELF without it ("Error loading uncompressed kernel without PVH ELF
Note") comes only after the VM has started. On arm64 QEMU takes the kernel's
``Image`` (magic ``ARM\x64`` at 0x38), also gzip-compressed as Debian ships it.
Each format says its CPU, so a kernel for another CPU than the image's is
refused before QEMU starts.
"""

from __future__ import annotations

import enum
import gzip
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from nexlab.errors import InputError, ToolMissingError

DEFAULT_BOOT_DIR = Path("/boot")
_BZIMAGE_MAGIC_OFFSET = 0x202
_BZIMAGE_MAGIC = b"HdrS"
_ELF_MAGIC = b"\x7fELF"
_PT_NOTE = 4
_XEN_ELFNOTE_PHYS32_ENTRY = 18
_ARM64_MAGIC_OFFSET = 0x38
_ARM64_MAGIC = b"ARM\x64"
_GZIP_MAGIC = b"\x1f\x8b"
_EM_X86_64 = 62
_EM_AARCH64 = 183
#: The names an architecture goes by (Debian's, the kernel's) and nexlab's own: the kernel's.
ARCHES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
#: Debian's name for each architecture nexlab boots: its kernels' suffix.
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


class KernelFormat(enum.StrEnum):
    BZIMAGE = "bzImage"
    ELF_PVH = "vmlinux (ELF, PVH)"
    ARM64_IMAGE = "arm64 Image"

    @property
    def arch(self) -> str:
        return "aarch64" if self is KernelFormat.ARM64_IMAGE else "x86_64"


@dataclass(frozen=True)
class Kernel:
    path: Path
    initrd: Path | None
    format: KernelFormat

    @property
    def arch(self) -> str:
        return self.format.arch


def architecture(name: str) -> str:
    """``name`` (amd64, x86_64, arm64, aarch64) as the kernel calls it; ``InputError`` for others."""
    try:
        return ARCHES[name]
    except KeyError:
        raise InputError(f"unsupported architecture {name!r}: use amd64 or arm64") from None


def kernels_dir() -> Path:
    """Where ``make kernels`` puts kernels for other CPUs than the host's: ``$NEXLAB_KERNELS``,
    else ``kernels`` in ``$NEXLAB_CACHE`` (the base images' cache), else ``/var/cache/nexlab/kernels``."""
    if os.environ.get("NEXLAB_KERNELS"):
        return Path(os.environ["NEXLAB_KERNELS"])
    return Path(os.environ.get("NEXLAB_CACHE", "/var/cache/nexlab")) / "kernels"


def newest_kernel(directory: Path, arch: str) -> Kernel | None:
    """The newest ``vmlinuz-*-cloud-ARCH`` in ``directory`` that has its ``initrd.img-*`` beside it."""
    pattern = f"vmlinuz-*-cloud-{DEBIAN_ARCH[architecture(arch)]}"
    for path in reversed(sorted(directory.glob(pattern), key=_version_key)):
        initrd = directory / path.name.replace("vmlinuz-", "initrd.img-", 1)
        if initrd.is_file():
            return Kernel(path=path, initrd=initrd, format=_format(path))
    return None


def default_kernel(boot_dir: Path = DEFAULT_BOOT_DIR, arch: str = "x86_64") -> Kernel:
    """The newest Debian cloud kernel for ``arch`` and its initrd.

    x86_64: from ``boot_dir`` (the host's); aarch64: from ``kernels_dir()/arm64``.

    The cloud flavour is small and has the virtio drivers in its initrd; a
    generic kernel is used only when no cloud kernel is installed.
    """
    if architecture(arch) == "aarch64":
        folder = kernels_dir() / "arm64"
        found = newest_kernel(folder, arch)
        if found is None:
            raise InputError(
                f"no arm64 kernel in {folder} (vmlinuz-*-cloud-arm64 with its initrd)",
                hint="run `make kernels` (python -m nexlab.boot.provision arm64), or pass --kernel/--initrd",
            )
        return found
    candidates = sorted(boot_dir.glob("vmlinuz-*-cloud-amd64"), key=_version_key)
    if not candidates:
        candidates = sorted(boot_dir.glob("vmlinuz-*"), key=_version_key)
    for path in reversed(candidates):
        initrd = boot_dir / path.name.replace("vmlinuz-", "initrd.img-", 1)
        if initrd.is_file():
            return Kernel(path=path, initrd=initrd, format=_format(path))
    raise ToolMissingError(f"a kernel with an initrd in {boot_dir} (vmlinuz-*-cloud-amd64)", "linux-image-cloud-amd64")


def choose_kernel(kernel: Path | None, initrd: Path | None, arch: str = "x86_64") -> Kernel:
    """The default kernel for ``arch`` when none is given; else the given one, with ``initrd`` only if given.

    A given kernel for another CPU than ``arch`` (the image's) is refused.
    """
    arch = architecture(arch)
    if kernel is None:
        if initrd is not None:
            raise InputError("--initrd needs --kernel (the default kernel brings its own initrd)")
        return default_kernel(arch=arch)
    kernel = _readable(kernel, "kernel")
    if initrd is not None:
        initrd = _readable(initrd, "initrd")
    chosen = Kernel(path=kernel, initrd=initrd, format=_format(kernel))
    if chosen.arch != arch:
        raise InputError(
            f"kernel {kernel} is a {DEBIAN_ARCH[chosen.arch]} kernel ({chosen.format}), "
            f"but the image is for {DEBIAN_ARCH[arch]}",
            hint=f"pass a {DEBIAN_ARCH[arch]} kernel, or leave out --kernel",
        )
    return chosen


def _readable(path: Path, what: str) -> Path:
    path = Path(path).absolute()
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist or is not a file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}", hint="run as root") from exc
    return path


def _format(path: Path) -> KernelFormat:
    try:
        with path.open("rb") as file:
            head = file.read(_BZIMAGE_MAGIC_OFFSET + 4)
            if head[:2] == _GZIP_MAGIC:
                head = _gunzip_head(file, _ARM64_MAGIC_OFFSET + 4)
            if head[_ARM64_MAGIC_OFFSET : _ARM64_MAGIC_OFFSET + 4] == _ARM64_MAGIC:
                return KernelFormat.ARM64_IMAGE
            if head[:4] == _ELF_MAGIC:
                machine = int.from_bytes(head[18:20], "little")
                if machine == _EM_AARCH64:
                    raise InputError(f"{path} is an arm64 ELF vmlinux; QEMU boots arm64 from the Image (vmlinuz)")
                if machine != _EM_X86_64:
                    raise InputError(f"{path} is an ELF kernel for e_machine {machine}, not x86_64 or arm64")
                if not _has_pvh_note(file):
                    raise InputError(
                        f"{path} is an ELF kernel without a PVH entry note; QEMU cannot start it",
                        hint="build it with CONFIG_PVH=y, or pass the bzImage (vmlinuz) instead",
                    )
                return KernelFormat.ELF_PVH
    except OSError as exc:
        raise InputError(f"cannot read kernel {path}: {exc.strerror}", hint="run as root") from exc
    if head[_BZIMAGE_MAGIC_OFFSET : _BZIMAGE_MAGIC_OFFSET + 4] == _BZIMAGE_MAGIC:
        return KernelFormat.BZIMAGE
    raise InputError(f"{path} is neither a bzImage nor an ELF vmlinux (nor an arm64 Image)")


def _gunzip_head(file: BinaryIO, size: int) -> bytes:
    """The first ``size`` bytes of a gzip-compressed kernel (short or empty when it is not gzip)."""
    file.seek(0)
    try:
        with gzip.GzipFile(fileobj=file) as unpacked:
            return unpacked.read(size)
    except (OSError, EOFError, zlib.error):
        return b""


def _has_pvh_note(elf: BinaryIO) -> bool:
    """Whether a 64-bit little-endian ELF has the Xen PHYS32_ENTRY note QEMU's PVH loader needs."""
    elf.seek(0)
    header = elf.read(64)
    if len(header) < 64 or header[4] != 2 or header[5] != 1:  # ELFCLASS64, little-endian
        return False
    (phoff,) = struct.unpack_from("<Q", header, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
    for index in range(phnum):
        elf.seek(phoff + index * phentsize)
        ptype, _flags, offset, _vaddr, _paddr, filesz = struct.unpack("<IIQQQQ", elf.read(40))
        if ptype != _PT_NOTE:
            continue
        elf.seek(offset)
        notes = elf.read(min(filesz, 1 << 20))
        position = 0
        while position + 12 <= len(notes):
            namesz, descsz, ntype = struct.unpack_from("<III", notes, position)
            name = notes[position + 12 : position + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == _XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            position += 12 + _align4(namesz) + _align4(descsz)
    return False


def _align4(value: int) -> int:
    return (value + 3) & ~3


def _version_key(path: Path) -> list[tuple[int, str]]:
    """Sort 6.1.0-9 before 6.1.0-10: numbers compare as numbers."""
    return [(int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", path.name)]
