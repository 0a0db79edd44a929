"""Seeded mutations of small real images: the reader answers, warns or raises ImageFormatError.

Mutations aim where the parser looks (superblock, group descriptors, inode
table, directory blocks, extent and indirect blocks) and some truncate the
file. For each, a full pass of the API must end, and no exception but
ImageFormatError may escape. How long that takes depends on the machine's load,
so it is measured by tests/benchmarks/bench_fuzz.py, not asserted here (the
pytest timeout still catches a hang). Set NEXLAB_FUZZ_SEED / NEXLAB_FUZZ_COUNT
to explore further.
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from nexlab.errors import ImageFormatError
from nexlab.image import open_image
from nexlab.run import run
from tests.conftest import scratch
from tests.image.images import SMALL_CASES, make_small_image

SEED = int(os.environ.get("NEXLAB_FUZZ_SEED", "20261125"))
COUNT = int(os.environ.get("NEXLAB_FUZZ_COUNT", "480"))  # 120 per small image


@dataclass(frozen=True)
class Target:
    image: bytes
    regions: tuple[tuple[str, int, int], ...]  # (what, offset, length)


def _regions(image: Path) -> tuple[tuple[str, int, int], ...]:
    dump = run(["dumpe2fs", str(image)]).stdout
    block_size = int(re.search(r"^Block size:\s+(\d+)", dump, re.M).group(1))  # type: ignore[union-attr]
    first = int(re.search(r"^First block:\s+(\d+)", dump, re.M).group(1))  # type: ignore[union-attr]
    table = int(re.search(r"Inode table at (\d+)", dump).group(1))  # type: ignore[union-attr]
    regions = [
        ("superblock", 1024, 1024),
        ("descriptors", (first + 1) * block_size, block_size),
        ("inode table", table * block_size, 48 * 256),
    ]
    for path in ("/", "/many", "/etc", "/a/b"):
        listing = run(["debugfs", "-R", f"blocks {path}", str(image)]).stdout.split()
        regions += [(f"directory {path}", int(b) * block_size, block_size) for b in listing[:4]]
    # Extent leaves and indirect blocks: the blocks of the big files that are not data.
    for path in ("/fragmented", "/big"):
        stat = run(["debugfs", "-R", f"stat {path}", str(image)]).stdout
        for block in re.findall(r"\((?:IND|DIND|ETB\d*)\):(\d+)", stat):
            regions.append((f"map {path}", int(block) * block_size, block_size))
    return tuple(regions)


@pytest.fixture(scope="module")
def targets(module_tmp: Path) -> list[Target]:
    workdir = scratch(module_tmp, "fuzz")
    out = []
    for case in SMALL_CASES:
        image = make_small_image(case, workdir)
        out.append(Target(image.read_bytes(), _regions(image)))
    return out


def mutate(rng: random.Random, target: Target) -> tuple[str, bytes]:
    data = bytearray(target.image)
    if rng.random() < 0.08:
        cut = rng.randrange(1024, len(data))
        return f"truncate at {cut}", bytes(data[:cut])
    what, offset, length = rng.choice(target.regions)
    changes = []
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        at = offset + rng.randrange(length)
        style = rng.random()
        if style < 0.4:
            data[at] ^= 1 << rng.randrange(8)
        elif style < 0.7:
            data[at] = rng.randrange(256)
        else:
            value = rng.choice((0, 0xFF, 0x7F, 0x80))
            data[at : at + 4] = bytes([value]) * 4
        changes.append(at)
    return f"{what} at {changes}", bytes(data[: len(target.image)])


def exercise(path: Path) -> str:
    """The whole API on one image; returns 'error', 'warnings' or 'clean'."""
    try:
        with open_image(path, hole_budget=64 << 20) as fs:
            entries = list(fs.walk())
            fs.sha256_files(entries)
            for entry in entries:
                fs.lookup(entry.path, follow=True)
                if entry.type == "file":
                    try:
                        for _chunk in fs.iter_chunks(entry):
                            pass
                        fs.read_bytes(entry, limit=4096)
                    except ImageFormatError:
                        pass
            fs.read_path("/etc/os-release")
            return "warnings" if fs.warnings else "clean"
    except ImageFormatError:
        return "error"


def test_pristine_images_are_clean(targets: list[Target], tmp_path: Path) -> None:
    for n, target in enumerate(targets):
        path = tmp_path / f"pristine-{n}.img"
        path.write_bytes(target.image)
        assert exercise(path) == "clean"
        assert any(what.startswith("map") for what, _, _ in target.regions)


@pytest.mark.slow
@pytest.mark.timeout(max(600, COUNT))
def test_fuzz(targets: list[Target], tmp_path: Path) -> None:
    rng = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    path = tmp_path / "mutant.img"
    for i in range(COUNT):
        target = targets[i % len(targets)]
        description, data = mutate(rng, target)
        path.write_bytes(data)
        try:
            outcome = exercise(path)
        except Exception as exc:  # anything else is a reader bug
            raise AssertionError(f"mutation {i} (seed {SEED}, {description}): {exc!r}") from exc
        outcomes[outcome] += 1
    # The mutations reached the parser: some images were refused, some read with warnings.
    assert outcomes["error"] > 0 and outcomes["warnings"] > 0, outcomes
