"""Boot fixtures: QEMU and the host kernel, and images built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_AGENT, require

BOOT_SIZE = "300MiB"


@pytest.fixture(scope="session")
def qemu_kernel():  # type: ignore[no-untyped-def]
    """The default kernel (host's Debian cloud kernel + initrd), with QEMU and qemu-img present."""
    from nexlab.boot.kernel import default_kernel
    from nexlab.errors import ToolMissingError

    require(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 (apt-get install qemu-system-x86)")
    require(shutil.which("qemu-img") is not None, "qemu-img (apt-get install qemu-utils)")
    try:
        kernel = default_kernel()
    except ToolMissingError:
        kernel = None
    require(kernel is not None, "a Debian cloud kernel and initrd in /boot (apt-get install linux-image-cloud-amd64)")
    return kernel


@pytest.fixture(scope="session")
def boot_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("boot")


@pytest.fixture(scope="session")
def agent_image(debian_base: str, boot_images: Path, qemu_kernel) -> Path:  # type: ignore[no-untyped-def]
    """A real build (Docker, loop mount) of the sample agent on the Debian base."""
    from nexlab.builder.pipeline import build_rootfs

    return build_rootfs(boot_images / "agent.ext4", agent=SAMPLE_AGENT, image=debian_base, size=BOOT_SIZE).output


@pytest.fixture(scope="session")
def crashing_image(debian_base: str, boot_images: Path, qemu_kernel) -> Path:  # type: ignore[no-untyped-def]
    """The same build with an agent that exits 1 at once."""
    from nexlab.builder.pipeline import build_rootfs

    agent = boot_images / "crashing-agent.sh"
    agent.write_text('#!/bin/sh\necho "agent: cannot reach the control plane" >&2\nexit 1\n')
    agent.chmod(0o755)
    return build_rootfs(boot_images / "crashing.ext4", agent=agent, image=debian_base, size=BOOT_SIZE).output


# The compressed payload of a bzImage, by its magic: (program that decompresses it to stdout).
_DECOMPRESSORS = {
    b"\x02\x21\x4c\x18": ["lz4", "-d", "-c"],
    b"\x28\xb5\x2f\xfd": ["zstd", "-d", "-c"],
    b"\xfd7zXZ": ["xz", "-d", "-c"],
    b"\x1f\x8b": ["gzip", "-d", "-c"],
}


@pytest.fixture(scope="session")
def pvh_vmlinux(qemu_kernel, boot_images: Path) -> Path:  # type: ignore[no-untyped-def]
    """The default kernel as an uncompressed ELF vmlinux (Firecracker's format), unpacked from its bzImage."""
    import struct
    import subprocess

    data = qemu_kernel.path.read_bytes()
    setup_sectors = data[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sectors + 1) * 512 + payload_offset
    payload = data[start : start + payload_length]
    command = next((argv for magic, argv in _DECOMPRESSORS.items() if payload.startswith(magic)), None)
    require(command is not None, f"optional: a known compression for {qemu_kernel.path}")
    assert command is not None
    require(shutil.which(command[0]) is not None, f"{command[0]} to unpack the kernel")
    compressed = boot_images / "vmlinux.compressed"
    compressed.write_bytes(payload)
    vmlinux = boot_images / "vmlinux"
    with vmlinux.open("wb") as out:
        # The kernel's build appends the uncompressed size after the stream, so
        # some decompressors exit non-zero after writing it all: judge the output.
        subprocess.run([*command, str(compressed)], stdout=out, stderr=subprocess.DEVNULL, check=False)
    with vmlinux.open("rb") as unpacked:
        assert unpacked.read(4) == b"\x7fELF", f"{command[0]} did not unpack an ELF vmlinux"
    return vmlinux
