"""The build from a cache entry by ``overlay`` (no Docker): the same bytes and sha256 as the agent
step on a whole copy, for agents of every shape, on real ext4 images made by mkfs.ext4 -d."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from pathlib import Path

import pytest

from nexlab.builder.mkfs import pinned_config
from nexlab.builder.reproducible import overlay
from nexlab.builder.reproducible.agent import AGENT, place_agent, placeholder, write_agent
from nexlab.e2fsck import ensure_clean
from nexlab.host import sparse
from nexlab.run import run
from tests.conftest import scratch

EPOCH = 1_700_000_000


def _entry(tmp_path: Path, *, block_size: int = 4096) -> Path:
    """An image like an entry's: files of many sizes (some holding zeros), the placeholder agent."""
    tree = tmp_path / "tree"
    rng = random.Random(14)
    for index in range(60):
        folder = tree / "usr" / "lib" / f"d{index % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.choice([0, 1, 700, 4096, 5000, 40_000, 300_000])
        content = bytes(size) if index % 5 == 0 else rng.randbytes(size)
        (folder / f"f{index}").write_bytes(content)
    (tree / "usr" / "local" / "bin").mkdir(parents=True)
    shutil.copyfile(placeholder(), tree / AGENT.lstrip("/"))
    (tree / AGENT.lstrip("/")).chmod(0o755)
    image = tmp_path / f"entry-{block_size}.ext4"
    with image.open("wb") as handle:
        handle.truncate(48 * 2**20)
    run(
        ["mkfs.ext4", "-q", "-F", "-b", str(block_size), "-d", str(tree), str(image)],
        env={"MKE2FS_CONFIG": str(pinned_config()), "E2FSPROGS_FAKE_TIME": str(EPOCH)},
    )
    return image


@pytest.fixture(scope="module")
def entry(module_tmp: Path) -> Path:
    return _entry(scratch(module_tmp, "overlay"))


AGENTS = {
    "empty": b"",
    "one byte": b"x",
    "three blocks and a bit": random.Random(1).randbytes(3 * 4096 + 5),
    "zero blocks then text": bytes(5 * 4096) + b"end",
    "two zero blocks": bytes(8192),
    "8 MiB": random.Random(2).randbytes(8 * 2**20),
}


@pytest.mark.parametrize("name", list(AGENTS))
def test_the_overlay_build_is_the_agent_step_on_a_whole_copy(entry: Path, tmp_path: Path, name: str) -> None:
    agent = tmp_path / "agent"
    agent.write_bytes(AGENTS[name])
    whole = tmp_path / "whole.ext4"
    sparse.copy(entry, whole)
    place_agent(whole, agent, EPOCH)

    out = tmp_path / "out.ext4"
    assert overlay.copy_metadata(entry, out, overlay.FileBlocks.of(entry))
    write_agent(out, agent, EPOCH)
    done = overlay.written(out)
    digest = sparse.in_background(overlay.sha256, entry, out, done)
    overlay.fill(entry, out, done)
    ensure_clean(out)
    assert out.read_bytes() == whole.read_bytes()
    assert digest.result() == hashlib.sha256(whole.read_bytes()).hexdigest()


def test_the_agent_step_leaves_the_lifetime_writes_counter_at_zero(entry: Path, tmp_path: Path) -> None:
    image = tmp_path / "image.ext4"
    sparse.copy(entry, image)
    run(["debugfs", "-w", "-R", "ssv kbytes_written 1234", str(image)])
    assert "Lifetime writes:          1234 kB" in run(["dumpe2fs", "-h", str(image)]).stdout
    agent = tmp_path / "agent"
    agent.write_bytes(AGENTS["8 MiB"])  # 8 MiB written by the session: the counter would show them
    place_agent(image, agent, EPOCH)
    assert "Lifetime writes" not in run(["dumpe2fs", "-h", str(image)]).stdout  # dumpe2fs omits a zero


def test_the_metadata_copy_leaves_the_files_content_out(entry: Path, tmp_path: Path) -> None:
    blocks = overlay.FileBlocks.of(entry)
    assert overlay.FileBlocks.from_json(blocks.to_json()) == blocks
    out = tmp_path / "out.ext4"
    assert overlay.copy_metadata(entry, out, blocks)
    assert out.stat().st_size == entry.stat().st_size
    kept = overlay.written(out)
    assert not sparse.subtract(kept, sparse.subtract(kept, blocks.ranges()))  # no file content copied
    # Exactly the entry's data outside its files' content. Not "less than the content": whether
    # mkfs's zeroed 4 MiB journal reads back as data or as a hole depends on the host's page cache
    # (ext4's SEEK_DATA), and in a full suite run it came back as data (4.1 MiB > 3.5 MiB).
    assert kept == sparse.subtract(overlay.written(entry), blocks.ranges())


def test_holes_coarser_than_the_blocks_are_refused(tmp_path: Path) -> None:
    """1 KiB blocks on a host whose holes are 4 KiB: the agent step's writes could not be told
    apart, so ``copy_metadata`` says no and the caller copies the whole entry."""
    if os.statvfs(tmp_path).f_bsize <= 1024:
        pytest.skip("the temporary directory's file system has 1 KiB blocks")
    entry = _entry(tmp_path, block_size=1024)
    assert not overlay.copy_metadata(entry, tmp_path / "out.ext4", overlay.FileBlocks.of(entry))


@pytest.mark.parametrize(
    "data", [{}, {"block_size": 4096}, {"block_size": 0, "runs": []}, {"block_size": 4096, "runs": [[5, 0]]}]
)
def test_a_malformed_file_block_record_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="file blocks"):
        overlay.FileBlocks.from_json(data)


def test_subtract_leaves_what_is_outside_the_cuts() -> None:
    rng = random.Random(7)
    for _ in range(500):

        def ranges() -> list[tuple[int, int]]:
            points = sorted(rng.sample(range(200), rng.randrange(0, 10) * 2))
            return [(points[i], points[i + 1] - points[i]) for i in range(0, len(points), 2)]

        keep, cut = ranges(), ranges()
        left = sparse.subtract(keep, cut)

        def covered(rs: list[tuple[int, int]]) -> set[int]:
            return {x for start, length in rs for x in range(start, start + length)}

        assert covered(left) == covered(keep) - covered(cut) and left == sorted(left)
        assert all(length > 0 for _, length in left)
