"""``nexlab build --verify-boot``: build, then boot in QEMU and see the agent start."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import nexlab_cli


def test_build_then_boot_a_gzipped_image(tmp_path: Path, debian_base: str, sample_agent: Path, qemu_kernel) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "rootfs.ext4.gz"
    result = nexlab_cli(
        "build", "--agent", str(sample_agent), "--image", debian_base, "--size", "200MiB",
        "-o", str(out), "--verify-boot", timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    log = tmp_path / "rootfs.ext4.gz.boot.log"
    assert "Starting agent" in log.read_text(errors="replace")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs.ext4.gz", "rootfs.ext4.gz.boot.log"]
