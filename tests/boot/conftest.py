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
    from nexlab.build.pipeline import build_rootfs

    return build_rootfs(boot_images / "agent.ext4", agent=SAMPLE_AGENT, image=debian_base, size=BOOT_SIZE).output


@pytest.fixture(scope="session")
def crashing_image(debian_base: str, boot_images: Path, qemu_kernel) -> Path:  # type: ignore[no-untyped-def]
    """The same build with an agent that exits 1 at once."""
    from nexlab.build.pipeline import build_rootfs

    agent = boot_images / "crashing-agent.sh"
    agent.write_text('#!/bin/sh\necho "agent: cannot reach the control plane" >&2\nexit 1\n')
    agent.chmod(0o755)
    return build_rootfs(boot_images / "crashing.ext4", agent=agent, image=debian_base, size=BOOT_SIZE).output
