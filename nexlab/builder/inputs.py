"""Checks on the files a user hands to a build, done before anything is created."""

from __future__ import annotations

import os
from pathlib import Path

from nexlab.errors import ArchitectureError, InputError
from nexlab.image import elf

#: nex's default base image (here, not in ``populate``: ``spec`` reads it, and a build
#: from the cache imports ``spec`` but never ``populate``).
DEFAULT_IMAGE = "synadia/nex-rootfs:alpine"


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
    """The CPU an ELF file is for (Docker's name: amd64, arm64, …), or None when it is not ELF (a script)."""
    with path.open("rb") as handle:
        return elf.elf_machine(handle.read(elf.HEAD))


#: The architectures ``--arch`` takes.
ARCHES = elf.SUPPORTED


def target_arch(agent: str | os.PathLike[str], arch: str | None = None) -> str:
    """The architecture a build is for: ``arch``, else the agent's ELF machine, else the host's.

    An ELF agent for a machine nexlab does not build for is refused (ArchitectureError, one line).
    """
    from nexlab.builder.engine import host_architecture

    if arch is not None and arch not in ARCHES:
        raise InputError(f"unknown architecture {arch!r}", hint=f"use one of {', '.join(ARCHES)}")
    file = regular_file(agent, "agent")
    machine = elf_machine(file)
    if machine is not None and machine not in ARCHES:
        raise ArchitectureError(
            f"agent {file} is built for {machine}, which nexlab does not build for",
            hint=f"build it for one of {', '.join(ARCHES)}",
        )
    if arch is not None:
        return arch
    return machine if machine is not None else host_architecture()


def check_agent(path: str | os.PathLike[str], arch: str | None = None) -> Path:
    """The agent must be a regular file and, if it is a binary, one for ``arch`` (default: its own, else the host's)."""
    agent = regular_file(path, "agent")
    machine = elf_machine(agent)
    target = target_arch(agent, arch)
    if machine is not None and machine != target:
        raise ArchitectureError(f"agent {agent} is built for {machine}, but the image is for {target}")
    if machine is None:
        with agent.open("rb") as handle:
            if handle.read(2) != b"#!":
                raise InputError(f"agent {agent} is neither an ELF binary nor a script with #!")
    return agent
