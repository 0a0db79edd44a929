"""``--size auto`` on real builds, Debian and Alpine, the mount path and ``--reproducible``:
the audit of each result shows the free space asked for and less than ``sizing.STEP`` more."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nexlab
from nexlab.builder import sizing
from nexlab.builder.manifest import BuildManifest, manifest_path
from nexlab.builder.pipeline import build_rootfs
from nexlab.builder.results import BuildResult, SizeResult
from tests.builder.test_cli_errors import assert_one_line_error
from tests.conftest import nexlab_cli, scratch

MiB = 2**20


@pytest.fixture(scope="module")
def builds(module_tmp: Path, debian_base: str, alpine_base: str, sample_agent: Path) -> dict[str, BuildResult]:
    where = scratch(module_tmp, "auto")
    (where / "a").mkdir()
    (where / "b").mkdir()
    made = {
        "debian-mount": build_rootfs(where / "debian.ext4", agent=sample_agent, image=debian_base, size="auto"),
        "alpine-mount": build_rootfs(
            where / "alpine.ext4", agent=sample_agent, image=alpine_base, size="auto", workload="40MiB"
        ),
    }
    for run in ("a", "b"):
        made[f"debian-repro-{run}"] = build_rootfs(
            where / run / "debian.ext4", agent=sample_agent, image=debian_base, size="auto", reproducible=True
        )
    made["alpine-repro"] = build_rootfs(
        where / "alpine-repro.ext4", agent=sample_agent, image=alpine_base, size="auto", free="20MiB", reproducible=True
    )
    # Slimmed before the size is chosen; an 8 MiB agent, written after it is chosen (agent.py).
    made["debian-repro-slim"] = build_rootfs(
        where / "slim.ext4", agent=sample_agent, image=debian_base, size="auto", free="40MiB", slim="default",
        reproducible=True,
    )  # fmt: skip
    big_agent = where / "big-agent.sh"
    big_agent.write_bytes(sample_agent.read_bytes() + b"#" * (8 * MiB) + b"\n")
    big_agent.chmod(0o755)
    made["debian-repro-big-agent"] = build_rootfs(
        where / "big-agent.ext4", agent=big_agent, image=debian_base, size="auto", reproducible=True
    )
    return made


ASKED = {
    "debian-mount": 32 * MiB,
    "alpine-mount": sizing.Headroom.of(workload="40MiB").free,
    "debian-repro-a": 32 * MiB,
    "alpine-repro": 20 * MiB,
    "debian-repro-slim": 40 * MiB,
    "debian-repro-big-agent": 32 * MiB,
}


@pytest.mark.parametrize("name", sorted(ASKED))
def test_the_audit_shows_the_free_space_asked_within_one_step(builds: dict[str, BuildResult], name: str) -> None:
    result = builds[name]
    audited = nexlab.audit(result.output, hash=False, workload="40MiB" if name == "alpine-mount" else None)
    budget = audited.budget
    assert ASKED[name] <= budget.nex_free_bytes < ASKED[name] + sizing.STEP, (name, budget.nex_free_bytes)
    assert audited.fsck.clean
    chosen = next(step for step in result.steps if isinstance(step, SizeResult))
    assert chosen.size == result.size == budget.image_bytes
    # The inodes follow the content: the headroom's free inodes (mke2fs rounds the count up to fill
    # inode table blocks), fewer in all than a fixed 16 KiB ratio gives on the same size.
    fs = audited.filesystem
    headroom_inodes = sizing.Headroom(ASKED[name]).inodes
    assert headroom_inodes <= fs.free_inodes < headroom_inodes + 16 * fs.groups
    assert fs.inodes_count < result.size // 16384
    if name == "alpine-mount":
        assert budget.workload is not None and budget.workload.fits
        assert budget.largest_workload_bytes < 40 * MiB + sizing.STEP


def test_reproducible_auto_is_bit_identical_and_records_the_request(builds: dict[str, BuildResult]) -> None:
    a, b = builds["debian-repro-a"], builds["debian-repro-b"]
    assert a.sha256 == b.sha256 and a.size == b.size
    manifest = BuildManifest.read(manifest_path(a.output))
    assert manifest.free == 32 * MiB and manifest.size == a.size and manifest.version == 3
    assert json.loads(manifest_path(b.output).read_text())["free"] == 32 * MiB


def test_free_with_a_fixed_size_is_one_line_on_the_command_line(tmp_path: Path, sample_agent: Path) -> None:
    result = nexlab_cli("build", "--agent", str(sample_agent), "--size", "200MiB", "--free", "10MiB", cwd=tmp_path)
    assert_one_line_error(result, "--free sets the free space of --size auto", "use --size auto --free")
    assert not list(tmp_path.iterdir())


def test_auto_with_slim_on_the_mount_path_is_one_line(tmp_path: Path, sample_agent: Path, debian_base: str) -> None:
    result = nexlab_cli(
        "build", "--agent", str(sample_agent), "--image", debian_base, "--size", "auto", "--slim", cwd=tmp_path
    )
    assert_one_line_error(result, "--size auto with --slim needs --reproducible", "add --reproducible")
    assert not list(tmp_path.iterdir())


def test_a_normal_user_staging_on_disk_gets_roots_auto_image(
    builds: dict[str, BuildResult], debian_base: str, sample_agent: Path
) -> None:
    """The size is a function of the tree, not of where it was staged: nobody stages on disk
    (root staged in a tmpfs) and gets the same size and the same bytes."""
    from tests.nobody import nexlab_as_nobody, nobody_directory

    with nobody_directory() as outdir:
        output = outdir / "rootfs.ext4"
        result = nexlab_as_nobody(
            outdir, "build", "--reproducible", "--agent", str(sample_agent), "--image", debian_base,
            "--size", "auto", "-o", str(output), "-q",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert output.stat().st_size == builds["debian-repro-a"].size
        assert output.read_bytes() == builds["debian-repro-a"].output.read_bytes()
