"""The architecture of an image, from the ELF headers of its binaries and its package database.

Read through a path reader (``Ext4Image.read_path``), nothing mounted: the audit
reports it and flags foreign binaries, the boot can pick its emulator from it.
Only the first bytes of each file are read: e_ident and e_machine are at the start.
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from nexlab.display import Summarized

#: ELF e_machine values of the architectures nexlab names (Debian's names, as Docker's platforms).
MACHINES: Mapping[int, str] = {62: "amd64", 183: "arm64", 3: "i386", 40: "armhf", 243: "riscv64"}
#: What nexlab builds and boots; anything else is "foreign" to every image.
SUPPORTED = ("amd64", "arm64")
#: Enough for the ELF header's e_ident, e_type and e_machine.
HEAD = 20
#: The binaries PID 1 and the agent's start depend on: a foreign one here means no boot.
BOOT_PATH = (
    "/sbin/init",
    "/usr/sbin/init",
    "/sbin/openrc",
    "/sbin/openrc-run",
    "/usr/sbin/openrc",
    "/usr/sbin/openrc-run",
    "/lib/systemd/systemd",
    "/usr/lib/systemd/systemd",
    "/bin/sh",
    "/bin/busybox",
    "/sbin/getty",
    "/sbin/agetty",
    "/usr/sbin/agetty",
    "/lib/ld-musl-x86_64.so.1",
    "/lib/ld-musl-aarch64.so.1",
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/ld-linux-aarch64.so.1",
    "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    "/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
)
AGENT = "/usr/local/bin/agent"
#: Package-database architectures that say nothing about the machine.
_NEUTRAL = {"all", "noarch", "any"}
#: apk names its architectures after the kernel's (x86_64, aarch64); nexlab uses Debian's.
_APK = {"x86_64": "amd64", "aarch64": "arm64", "x86": "i386", "armv7": "armhf", "armhf": "armhf"}


class _Reads(Protocol):
    def read_path(self, path: str, limit: int | None = None) -> bytes | None: ...


def elf_machine(head: bytes | None) -> str | None:
    """The architecture of an ELF file from its first bytes; None when not ELF, "em-N" when unnamed."""
    if head is None or len(head) < HEAD or head[:4] != b"\x7fELF":
        return None
    order = "<" if head[5] == 1 else ">"
    (machine,) = struct.unpack_from(order + "H", head, 18)
    return MACHINES.get(machine, f"em-{machine}")


@dataclass(frozen=True)
class Architecture(Summarized):
    """What an image is built for: ``name`` is "amd64", "arm64", "mixed" or None (nothing to tell)."""

    name: str | None
    #: Machine of each ELF binary looked at (boot path, agent and any other executable given).
    binaries: Mapping[str, str] = field(default_factory=dict)
    #: Architectures the package database names (dpkg ``Architecture:``, apk ``A:``), "all" left out.
    packages: tuple[str, ...] = ()

    @property
    def mixed(self) -> bool:
        return self.name == "mixed"

    @property
    def main(self) -> str | None:
        """The machine the image runs: ``name``, or for a mixed image its boot path's most common one."""
        if not self.mixed:
            return self.name
        counts = Counter(m for p, m in self.binaries.items() if p in BOOT_PATH) or Counter(self.packages)
        return max(sorted(counts), key=lambda m: counts[m]) if counts else None

    def foreign(self) -> dict[str, str]:
        """Binaries whose machine is not the image's main one."""
        main = self.main
        return {p: m for p, m in self.binaries.items() if main is not None and m != main}

    def summary(self) -> str:
        if self.name is None:
            return "architecture unknown (no ELF binary nor package architecture found)"
        kinds = sorted(set(self.binaries.values()) | set(self.packages))
        return f"{self.name}" + (f" ({', '.join(kinds)})" if self.mixed else "")

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "binaries": dict(sorted(self.binaries.items())), "packages": list(self.packages)}


def package_architectures(dpkg_status: str | None, apk_installed: str | None) -> tuple[str, ...]:
    found: set[str] = set()
    for value in re.findall(r"^Architecture: *(\S+)", dpkg_status or "", re.M):
        found.add(value)
    for value in re.findall(r"^A:(\S+)", apk_installed or "", re.M):
        found.add(_APK.get(value, value))
    return tuple(sorted(found - _NEUTRAL))


def decide(binaries: Mapping[str, str], packages: tuple[str, ...]) -> str | None:
    """The image's architecture: the boot path's binaries first (they must run), then packages.

    The agent is left out: it is what the audit checks against the image.
    """
    boot = {m for p, m in binaries.items() if p in BOOT_PATH}
    if len(boot) == 1:
        return boot.pop()
    if len(boot) > 1:
        return "mixed"
    if len(packages) == 1:
        return packages[0]
    if len(packages) > 1:
        return "mixed"
    others = {m for p, m in binaries.items() if p != AGENT}
    return others.pop() if len(others) == 1 else ("mixed" if others else None)


def architecture(
    head: Callable[[str], bytes | None], paths: tuple[str, ...] = (), text: Callable[[str], str | None] | None = None
) -> Architecture:
    """The architecture from ``head(path)`` (the first bytes of a file, symlinks followed) over the
    boot path, the agent and ``paths``, and from the package databases read with ``text``."""
    binaries: dict[str, str] = {}
    for path in dict.fromkeys((*BOOT_PATH, AGENT, *paths)):
        machine = elf_machine(head(path))
        if machine is not None:
            binaries[path] = machine
    packages = package_architectures(text("/var/lib/dpkg/status"), text("/lib/apk/db/installed")) if text else ()
    return Architecture(decide(binaries, packages), binaries, packages)


def image_architecture(fs: _Reads) -> Architecture:
    """The architecture of an open image (``nexlab.image.open_image``), from its boot path,
    agent and package database. Symlinks are followed by the reader's lookup."""

    def head(path: str) -> bytes | None:
        try:
            return fs.read_path(path, limit=HEAD)
        except (OSError, ValueError):
            return None

    def text(path: str) -> str | None:
        try:
            data = fs.read_path(path, limit=64 << 20)
        except (OSError, ValueError):
            return None
        return data.decode("utf-8", "surrogateescape") if data is not None else None

    return architecture(head, text=text)
