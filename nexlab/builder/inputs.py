"""Checks on the files a user hands to a build, done before anything is created."""

from __future__ import annotations

import os
import platform
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


def check_agent(path: str | os.PathLike[str]) -> Path:
    """The agent must be a regular file and, if it is a binary, one for this CPU."""
    agent = regular_file(path, "agent")
    machine = elf_machine(agent)
    host = platform.machine()
    if machine is not None and machine != host:
        raise ArchitectureError(f"agent {agent} is built for {machine}, but this host is {host}")
    if machine is None:
        with agent.open("rb") as handle:
            if handle.read(2) != b"#!":
                raise InputError(f"agent {agent} is neither an ELF binary nor a script with #!")
    return agent
