"""``--size auto``: the smallest image that leaves the free space asked, exact on the first try.

The fast part sizes against real mke2fs (probes, ``mkfs.ext4 -d`` trees) and checks
with ``nexlab.audit``'s budget; ``test_sizing_builds.py`` builds real Debian and Alpine
images on both paths.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

import nexlab
from nexlab.audit.budget import margin
from nexlab.builder import sizing
from nexlab.builder.allocate import MINIMUM_SIZE
from nexlab.builder.mkfs import MkfsOptions, make_filesystem
from nexlab.builder.pipeline import build
from nexlab.builder.spec import BuildSpec
from nexlab.errors import InputError

MiB = 2**20
AGENT = Path(__file__).resolve().parents[2] / "nexlab" / "builder" / "assets" / "sample-agent.sh"


def test_headroom_defaults_to_32_mib_and_a_workload_gets_the_audits_margin() -> None:
    assert sizing.Headroom.of().free == sizing.DEFAULT_FREE == 32 * MiB
    assert sizing.Headroom.of("64MiB").free == 64 * MiB
    workload = sizing.Headroom.of(workload="20MB")
    assert workload.free == 20_000_000 + margin(20_000_000, 4096) and workload.workload == 20_000_000
    assert sizing.Headroom.of("8MiB", "20MB").free == workload.free + 8 * MiB
    assert sizing.Headroom.of().inodes == 32 * MiB // sizing.FREE_BYTES_PER_INODE


def test_auto_is_opt_in_and_free_or_workload_with_a_fixed_size_is_refused() -> None:
    assert sizing.check_auto(157286400, None, None) is None
    assert sizing.check_auto(" AUTO ", None, "20MB") == sizing.Headroom.of(workload="20MB")
    with pytest.raises(InputError, match=r"--free sets the free space of --size auto, but the size is fixed"):
        sizing.check_auto("200MiB", "10MiB", None)
    with pytest.raises(InputError, match=r"--free and --workload"):
        sizing.check_auto(157286400, "10MiB", "5MiB")
    with pytest.raises(InputError, match="invalid size"):
        sizing.check_auto("auto", "lots", None)
    # The build refuses it before the engine or root is asked for anything.
    spec = BuildSpec.of(AGENT, size="150MiB", free="10MiB")
    with pytest.raises(InputError, match="--size auto"):
        build(spec, "/nonexistent/rootfs.ext4")
    assert BuildSpec.of(AGENT).size == 157286400  # nex's default stays


@pytest.mark.parametrize(
    ("content", "files"),
    [(0, 0), (3 * MiB, 500), (100 * MiB, 8000), (110 * MiB, 8000), (123 * MiB, 20000), (600 * MiB, 40000)],
)
def test_the_chosen_size_is_the_smallest_that_leaves_the_free_space(content: int, files: int) -> None:
    """Around 128 MiB the journal jumps from 4 to 16 MiB: free space is not monotonic in the size."""
    headroom = sizing.Headroom.of()
    chosen = sizing.choose(content, files, headroom)
    options = chosen.options()
    probe = sizing.probe_free(chosen.size, options)
    assert headroom.free <= probe.nex_free_bytes - content < headroom.free + sizing.STEP
    assert probe.free_inodes >= files + headroom.inodes
    assert chosen.size % 4096 == 0
    smaller = sizing.probe_free(chosen.size - 4096, options)
    assert smaller.nex_free_bytes - content < headroom.free or chosen.size - 4096 < MINIMUM_SIZE


def test_the_inode_count_follows_the_file_count() -> None:
    headroom = sizing.Headroom.of()
    few = sizing.choose(100 * MiB, 1000, headroom)
    many = sizing.choose(100 * MiB, 50000, headroom)
    assert few.inode_count < 4000 < 50000 < many.inode_count
    # A fixed ratio (one per 16 KiB) would give both the same.
    assert abs(few.size - many.size) > 50000 * 256 // 2


def _tree(root: Path, files: int, size: int) -> Path:
    root.mkdir()
    for index in range(files):
        directory = root / f"d{index % 7}"
        directory.mkdir(exist_ok=True)
        (directory / f"file-{index:05d}").write_bytes(os.urandom(size + index % 5000))
    (root / "sparse").open("wb").truncate(8 * MiB)  # a hole: not counted by ext4
    (root / "link").symlink_to("d0/" + "x" * 80)
    return root


def test_fit_with_mkfs_d_is_exact_and_deterministic(tmp_path: Path) -> None:
    """The reproducible path's loop: the first size from the tree's names and sizes (the sparse
    file counted in full), mkfs.ext4 -d measures, the remake is within the step."""
    tree = _tree(tmp_path / "tree", 600, 9000)
    headroom = sizing.Headroom.of("20MiB")
    sizes = []
    for run in range(2):
        image = tmp_path / f"image{run}.ext4"
        made: list[int] = []

        def make(size: int, options: MkfsOptions, image: Path = image, made: list[int] = made) -> None:
            image.unlink(missing_ok=True)
            with image.open("wb") as handle:
                handle.truncate(size)
            make_filesystem(image, replace(options, populate_from=tree))
            made.append(size)

        estimate, files = sizing.tree_content(tree)
        first = sizing.choose(estimate, files, headroom, slack=sizing.STEP // 2)
        chosen, _ = sizing.fit(image, headroom, first, make)
        assert len(made) == 2, "the 8 MiB hole makes the first guess too big: one remake"
        budget = nexlab.audit(image, fsck_check=False, hash=False).budget
        assert headroom.free <= budget.nex_free_bytes < headroom.free + sizing.STEP
        assert image.stat().st_size == chosen.size
        sizes.append(chosen)
    assert sizes[0] == sizes[1]


def _tar(members: list[tuple[str, bytes | None]]) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_the_count_without_writing_matches_what_the_extraction_counts(tmp_path: Path) -> None:
    """``--size auto``'s first pass on the mount path against the extraction it sizes for: the same
    inodes, and the same blocks (holes left out, the scan's model of ext4's allocation)."""
    from nexlab.builder.extract import count, extract

    members: list[tuple[str, bytes | None]] = [("usr", None), ("usr/lib", None), ("etc", None)]
    members += [(f"usr/lib/f{i:04d}", os.urandom(1 + i * 37)) for i in range(400)]
    members += [("usr/lib/zeros", bytes(3 * MiB) + b"tail"), ("etc/big", os.urandom(2 * MiB))]
    members += [("var", None), ("var/log", None), ("var/log/dropped.log", os.urandom(50000))]
    archive = _tar(members)
    counted = count([archive[i : i + 65536] for i in range(0, len(archive), 65536)])
    target = tmp_path / "root"
    target.mkdir()
    extracted = extract([archive], target, as_root=os.geteuid() == 0).content
    assert counted.inodes == extracted.inodes and counted.entries == extracted.entries
    assert counted.directories == extracted.directories
    assert abs(counted.bytes - extracted.bytes) <= 16 * 4096, (counted.bytes, extracted.bytes)
    # The 3 MiB of zeros are a hole, the log is left out.
    kept = [data for name, data in members if data is not None and not name.startswith("var/log/")]
    assert counted.bytes < sum(-(-len(data) // 4096) * 4096 for data in kept) - 2 * MiB
