"""Checks on the files a user hands to a build, done before anything is created."""

from __future__ import annotations

import os
from pathlib import Path

from nexlab.errors import ArchitectureError, InputError

# ELF e_machine values (elf.h) for the architectures Firecracker runs.
_ELF_MACHINES = {3: "i386", 62: "x86_64", 183: "aarch64", 40: "arm", 243: "riscv64"}


def regular_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path if it is an existing, readable regular file."""
    file = Path(path)
    if not file.exists():
        raise InputError(f"{what} {file} does not exist")
    if not file.is_file():
        raise InputError(f"{what} {file} is not a regular file")
    if not os.access(file, os.R_OK):
        raise InputError(f"{what} {file} is not readable")
    return file.resolve()


def elf_machine(path: Path) -> str | None:
    """The CPU an ELF file is for, or None when the file is not ELF (a script, say)."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return _ELF_MACHINES.get(machine, f"e_machine {machine}")


#: ELF machine -> Docker's architecture name, for the targets nexlab builds.
ELF_TO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
#: The architectures ``--arch`` takes.
ARCHES = tuple(ELF_TO_ARCH.values())


def target_arch(agent: str | os.PathLike[str], arch: str | None = None) -> str:
    """The architecture a build is for: ``arch``, else the agent's ELF machine, else the host's.

    An ELF agent for a machine nexlab does not build for is refused (ArchitectureError, one line).
    """
    from nexlab.builder.engine import host_architecture

    if arch is not None and arch not in ARCHES:
        raise InputError(f"unknown architecture {arch!r}", hint=f"use one of {', '.join(ARCHES)}")
    file = regular_file(agent, "agent")
    machine = elf_machine(file)
    if machine is not None and machine not in ELF_TO_ARCH:
        raise ArchitectureError(
            f"agent {file} is built for {machine}, which nexlab does not build for",
            hint=f"build it for one of {', '.join(ELF_TO_ARCH)}",
        )
    if arch is not None:
        return arch
    return ELF_TO_ARCH[machine] if machine is not None else host_architecture()


def check_agent(path: str | os.PathLike[str], arch: str | None = None) -> Path:
    """The agent must be a regular file and, if it is a binary, one for ``arch`` (default: its own, else the host's)."""
    agent = regular_file(path, "agent")
    machine = elf_machine(agent)
    target = target_arch(agent, arch)
    if machine is not None and ELF_TO_ARCH.get(machine) != target:
        raise ArchitectureError(f"agent {agent} is built for {machine}, but the image is for {target}")
    if machine is None:
        with agent.open("rb") as handle:
            if handle.read(2) != b"#!":
                raise InputError(f"agent {agent} is neither an ELF binary nor a script with #!")
    return agent
