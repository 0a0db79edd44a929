"""A build from a cache entry whose output sha256 does not wait for the copy of the entry.

The agent step (``agent.write_agent``: debugfs) reads and writes only metadata
(superblock, group descriptors, bitmaps, inode tables, directories, extent
blocks) and the blocks it gives the agent; it never reads what a regular file
holds. So the output first gets the entry's blocks but its files' content
(``FileBlocks``, recorded with the entry), the agent step runs on that, and the
final image is then known: the output's bytes where it has data (the metadata
copied, and whatever the agent step wrote, holes included), the entry's
elsewhere. ``sha256`` reads it from those two files in one pass while ``fill``
copies the rest of the entry in, on the other core: the image's sha256 (CPU
bound, one stream) no longer waits for the copy.

Where the output's file system cannot tell data from holes at the image's block
size, ``copy_metadata`` says so and the caller copies the whole entry instead.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexlab.host import sparse
from nexlab.host.sparse import Ranges


@dataclass(frozen=True)
class FileBlocks:
    """Where an image's regular files keep their content: merged (first block, count) runs."""

    block_size: int
    runs: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, image: Path) -> FileBlocks:
        from nexlab.image import open_image

        runs: list[tuple[int, int]] = []
        seen: set[int] = set()
        with open_image(image) as fs:
            for entry in fs.walk():
                if entry.type == "file" and entry.inode not in seen:
                    seen.add(entry.inode)
                    runs.extend(fs.data_blocks(entry))
            block_size = fs.geometry.block_size
        merged: list[tuple[int, int]] = []
        for start, count in sorted(runs):
            if merged and merged[-1][0] + merged[-1][1] >= start:
                first, length = merged[-1]
                merged[-1] = (first, max(length, start + count - first))
            else:
                merged.append((start, count))
        return cls(block_size, tuple(merged))

    def ranges(self) -> Ranges:
        return [(start * self.block_size, count * self.block_size) for start, count in self.runs]

    def to_json(self) -> dict[str, Any]:
        return {"block_size": self.block_size, "runs": [list(run) for run in self.runs]}

    @classmethod
    def from_json(cls, data: Any) -> FileBlocks:
        """``ValueError`` for anything but what ``to_json`` writes."""
        try:
            block_size = int(data["block_size"])
            runs = tuple((int(start), int(count)) for start, count in data["runs"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"file blocks: {exc}") from None
        if block_size <= 0 or any(start < 0 or count <= 0 for start, count in runs):
            raise ValueError("file blocks: a negative or empty run")
        return cls(block_size, runs)


def copy_metadata(entry_image: Path, target: Path, blocks: FileBlocks) -> bool:
    """``target`` := the entry's bytes but its files' content (holes there), at full size.

    False when ``target``'s file system reports data beyond what was copied (it has
    no holes, or coarser ones than the image's blocks): its holes could not tell the
    agent step's writes from the entry's, so this way cannot be used there.
    """
    with open(entry_image, "rb") as source, open(os.open(target, os.O_WRONLY | os.O_CREAT, 0o666), "wb") as out:
        size = os.fstat(source.fileno()).st_size
        copied = sparse.subtract(list(sparse.extents(source.fileno(), size)), blocks.ranges())
        sparse.copy_ranges(source.fileno(), out.fileno(), copied)
        out.truncate(size)
        return not sparse.subtract(list(sparse.extents(out.fileno(), size)), copied)


def written(target: Path) -> Ranges:
    """Where ``target`` has data now (after the agent step): the final image's bytes there."""
    with open(target, "rb") as handle:
        return list(sparse.extents(handle.fileno(), os.fstat(handle.fileno()).st_size))


def fill(entry_image: Path, target: Path, done: Ranges) -> None:
    """Copy the entry's data outside ``done`` (``written``) into ``target``: the image is whole."""
    with open(entry_image, "rb") as source, open(target, "r+b") as out:
        size = os.fstat(source.fileno()).st_size
        sparse.copy_ranges(
            source.fileno(), out.fileno(), sparse.subtract(list(sparse.extents(source.fileno(), size)), done)
        )


def sha256(entry_image: Path, target: Path, done: Ranges) -> str:
    """sha256 of the image ``fill`` completes: ``target``'s bytes in ``done``, the entry's
    elsewhere (holes as zeros); safe to run while ``fill`` writes outside ``done``."""
    digest = hashlib.sha256()
    with open(entry_image, "rb") as source, open(target, "rb") as out:
        size = os.fstat(source.fileno()).st_size
        if size == 0:
            return digest.hexdigest()
        with (
            mmap.mmap(source.fileno(), size, prot=mmap.PROT_READ) as entry_bytes,
            mmap.mmap(out.fileno(), size, prot=mmap.PROT_READ) as out_bytes,
        ):
            entry_data = list(sparse.extents(source.fileno(), size))
            for start, length, from_target in _pieces(done, size):
                if from_target:
                    _update(digest, out_bytes, start, length)
                    continue
                # The entry's part: its data, and zeros for its holes (not faulted in from the map).
                position = start
                for data_start, data_length in _clip(entry_data, start, start + length):
                    _zeros(digest, data_start - position)
                    _update(digest, entry_bytes, data_start, data_length)
                    position = data_start + data_length
                _zeros(digest, start + length - position)
    return digest.hexdigest()


def _pieces(done: Ranges, size: int) -> Iterator[tuple[int, int, bool]]:
    """[0, size) in order, as (start, length, inside ``done``)."""
    position = 0
    for start, length in done:
        if start > position:
            yield position, start - position, False
        yield start, length, True
        position = start + length
    if position < size:
        yield position, size - position, False


def _clip(ranges: Ranges, start: int, end: int) -> Iterator[tuple[int, int]]:
    for first, length in ranges:
        lo, hi = max(first, start), min(first + length, end)
        if lo < hi:
            yield lo, hi - lo


_ZEROS = memoryview(bytes(2**20))


def _zeros(digest: Any, count: int) -> None:
    while count > 0:
        step = min(count, len(_ZEROS))
        digest.update(_ZEROS[:step])
        count -= step


def _update(digest: Any, data: mmap.mmap, start: int, length: int) -> None:
    # In slices: a memoryview of a mapping pins it, and hashlib lets go of the GIL per call.
    view = memoryview(data)
    try:
        for offset in range(start, start + length, 2**22):
            digest.update(view[offset : min(offset + 2**22, start + length)])
    finally:
        view.release()
