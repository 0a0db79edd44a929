"""The kernel a boot check starts: the host's Debian cloud kernel, or one the user gives.

Two formats boot with QEMU's ``-kernel``: a bzImage (``/boot/vmlinuz-*``, via
the x86 boot protocol) and an uncompressed ELF ``vmlinux`` (Firecracker's
format), which QEMU only starts through the PVH entry point, so the ELF must
carry a PVH note (``CONFIG_PVH=y``). We check that up front: QEMU's own error
for an ELF without it ("Error loading uncompressed kernel without PVH ELF
Note") comes only after the VM has started.
"""

from __future__ import annotations

import enum
import re
import struct
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


class KernelFormat(enum.StrEnum):
    BZIMAGE = "bzImage"
    ELF_PVH = "vmlinux (ELF, PVH)"


@dataclass(frozen=True)
class Kernel:
    path: Path
    initrd: Path | None
    format: KernelFormat


def default_kernel(boot_dir: Path = DEFAULT_BOOT_DIR) -> Kernel:
    """The newest Debian cloud kernel in ``boot_dir`` and its initrd.

    The cloud flavour is small and has the virtio drivers in its initrd; a
    generic kernel is used only when no cloud kernel is installed.
    """
    candidates = sorted(boot_dir.glob("vmlinuz-*-cloud-amd64"), key=_version_key)
    if not candidates:
        candidates = sorted(boot_dir.glob("vmlinuz-*"), key=_version_key)
    for path in reversed(candidates):
        initrd = boot_dir / path.name.replace("vmlinuz-", "initrd.img-", 1)
        if initrd.is_file():
            return Kernel(path=path, initrd=initrd, format=_format(path))
    raise ToolMissingError(f"a kernel with an initrd in {boot_dir} (vmlinuz-*-cloud-amd64)", "linux-image-cloud-amd64")


def choose_kernel(kernel: Path | None, initrd: Path | None) -> Kernel:
    """The default kernel when none is given; else the given one, with ``initrd`` only if given."""
    if kernel is None:
        if initrd is not None:
            raise InputError("--initrd needs --kernel (the default kernel brings its own initrd)")
        return default_kernel()
    kernel = _readable(kernel, "kernel")
    if initrd is not None:
        initrd = _readable(initrd, "initrd")
    return Kernel(path=kernel, initrd=initrd, format=_format(kernel))


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
            if head[:4] == _ELF_MAGIC:
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
    raise InputError(f"{path} is neither a bzImage nor an ELF vmlinux")


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
