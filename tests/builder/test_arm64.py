"""arm64 on an x86 host: an offline arm64 base, builds on both paths, bit-identical twice, refusals, a boot.

The setup runs emulated (qemu-user-static through binfmt_misc, registered by ``make binfmt``);
the boot runs under TCG in qemu-system-aarch64 with the kernel ``make kernels`` provisions.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from nexlab.boot.boot import image_architecture
from nexlab.builder import base, binfmt
from tests.conftest import SAMPLE_AGENT, nexlab_cli, require

pytestmark = [pytest.mark.docker, pytest.mark.root]

ARM64_TAG = "nexlab/debian:bookworm-arm64"


def _require_binfmt() -> None:
    require(binfmt.probe("arm64") is None, f"binfmt for arm64 ({binfmt.probe('arm64')}; run make binfmt)")


def _require_arm64_boot() -> None:
    from nexlab.boot.kernel import kernels_dir, newest_kernel

    require(shutil.which("qemu-system-aarch64") is not None, "qemu-system-aarch64 (apt-get install qemu-system-arm)")
    require(newest_kernel(kernels_dir() / "arm64", "arm64") is not None, "an arm64 kernel (make kernels)")


@pytest.fixture(scope="session")
def arm64_base(docker_client, is_root) -> str:  # type: ignore[no-untyped-def]
    """The arm64 Debian base (debootstrap's second stage emulated; cached like the amd64 one)."""
    _require_binfmt()
    base.debian(ARM64_TAG, base.DebianSpec(arch="arm64"))
    return ARM64_TAG


@pytest.fixture(scope="session")
def arm64_builds(arm64_base: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("arm64-builds")
    builds = {
        "mount": ("--size", "200MiB"),
        "reproducible-1": ("--size", "200MiB", "--reproducible", "--no-cache"),
        "reproducible-2": ("--size", "200MiB", "--reproducible", "--no-cache"),
    }
    images = {}
    for name, flags in builds.items():
        image = out / f"{name}.ext4"
        result = nexlab_cli("build", "--agent", str(SAMPLE_AGENT), "--image", arm64_base, "--arch", "arm64",
                            *flags, "-o", str(image), timeout=900)  # fmt: skip
        assert result.returncode == 0, result.stderr
        images[name] = image
    return images


def test_the_arm64_base_is_labelled_arm64(arm64_base: str, docker_client) -> None:  # type: ignore[no-untyped-def]
    image = docker_client.images.get(arm64_base)
    assert image.attrs["Architecture"] == "arm64"
    # docker import would leave no creation time; --reproducible takes its default epoch from it.
    assert not image.attrs["Created"].startswith("0001")


@pytest.mark.parametrize("path", ["mount", "reproducible-1"])
def test_an_arm64_build_holds_arm64_binaries(arm64_builds: dict[str, Path], path: str) -> None:
    assert image_architecture(arm64_builds[path]) == "aarch64"
    audit = nexlab_cli("audit", str(arm64_builds[path]), "--json")
    assert audit.returncode == 0, audit.stderr
    report = json.loads(audit.stdout)
    assert report["architecture"]["name"] == "arm64"
    assert not [f for f in report["findings"] if f["code"] in ("agent-foreign-arch", "boot-foreign-arch")]


def test_reproducible_arm64_builds_are_bit_identical(arm64_builds: dict[str, Path]) -> None:
    first, second = (hashlib.sha256(arm64_builds[f"reproducible-{n}"].read_bytes()).hexdigest() for n in (1, 2))
    assert first == second


def test_a_base_for_another_architecture_is_refused_before_building(
    arm64_base: str, debian_base: str, tmp_path: Path
) -> None:
    for image, arch in ((arm64_base, "amd64"), (debian_base, "arm64")):
        output = tmp_path / f"{arch}.ext4"
        result = nexlab_cli("build", "--agent", str(SAMPLE_AGENT), "--image", image, "--arch", arch, "-o", str(output))
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) <= 2 and "Traceback" not in result.stderr, result.stderr
        assert arch in result.stderr and not output.exists()


def test_missing_binfmt_is_explained(tmp_path: Path) -> None:
    # The real registration is probed by the fixture above; here an empty binfmt_misc folder
    # stands for a host where make binfmt never ran.
    reason = binfmt.probe("arm64", tmp_path)
    assert reason is not None and "qemu-aarch64" in reason
    with pytest.raises(Exception, match="make binfmt"):
        binfmt.require("arm64", tmp_path)


@pytest.mark.qemu
def test_an_arm64_build_boots_to_the_agent(arm64_builds: dict[str, Path], tmp_path: Path) -> None:
    from nexlab.boot import Outcome, boot

    _require_arm64_boot()

    result = boot(arm64_builds["mount"], log=tmp_path / "console.log")
    assert result.outcome is Outcome.AGENT_STARTED, (result.reason, result.last_lines)
    assert result.machine == "virt"


ARM64_SYSTEMD_TAG = "nexlab/debian:bookworm-systemd-arm64"


@pytest.mark.qemu
def test_an_arm64_systemd_base_builds_and_boots_to_the_agent(docker_client, is_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The base matrix's systemd shape on arm64: the agent's unit is installed, enabled and started."""
    from nexlab.boot import Outcome, boot

    _require_binfmt()
    _require_arm64_boot()
    base.debian(ARM64_SYSTEMD_TAG, base.DebianSpec.variant("bookworm", "systemd", arch="arm64"))
    image = tmp_path / "systemd.ext4"
    result = nexlab_cli("build", "--agent", str(SAMPLE_AGENT), "--image", ARM64_SYSTEMD_TAG, "--arch", "arm64",
                        "--size", "300MiB", "-o", str(image), timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert image_architecture(image) == "aarch64"
    booted = boot(image, log=tmp_path / "console.log")
    assert booted.outcome is Outcome.AGENT_STARTED, (booted.reason, booted.last_lines)
