"""Logical-to-physical block maps: extent trees (ext4) and indirect blocks (ext2/3).

Both produce the same thing, a sorted list of runs ``(logical, physical, count,
uninitialised)``; holes are the gaps. Every bound a hostile image could abuse is
checked here: tree depth, entries per node, nodes visited, block numbers against
the filesystem size, and the total mapped blocks against the file size.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from nexlab.errors import ImageFormatError

Run = tuple[int, int, int, bool]
ReadBlock = Callable[[int], memoryview]

EXTENT_MAGIC = 0xF30A
MAX_DEPTH = 5  # the kernel's EXT4_MAX_EXTENT_DEPTH
_UNINIT_LEN = 32768

_HEADER = struct.Struct("<HHHH4x")
_INDEX = struct.Struct("<IIH2x")
_LEAF = struct.Struct("<IHHI")


def extent_runs(i_block: bytes, file_blocks: int, blocks_count: int, read_block: ReadBlock) -> list[Run]:
    """Runs of an extent-mapped inode; ``file_blocks`` is ceil(size / block size)."""
    runs: list[Run] = []
    visited: set[int] = set()
    # Depth-first in logical order; each item is a node and the depth its parent promised.
    stack: list[tuple[memoryview, int | None]] = [(memoryview(i_block), None)]
    next_logical = 0
    while stack:
        node, expected_depth = stack.pop()
        if len(node) < 12:
            raise ImageFormatError("extent node too small")
        magic, entries, max_entries, depth = _HEADER.unpack_from(node, 0)
        if magic != EXTENT_MAGIC:
            raise ImageFormatError(f"bad extent header magic 0x{magic:04x}")
        if depth > MAX_DEPTH or (expected_depth is not None and depth != expected_depth):
            raise ImageFormatError(f"bad extent tree depth {depth}")
        if entries > max_entries or 12 + 12 * entries > len(node):
            raise ImageFormatError(f"extent node claims {entries} entries")
        if depth:
            children: list[int] = []
            for i in range(entries):
                _first, leaf_lo, leaf_hi = _INDEX.unpack_from(node, 12 + 12 * i)
                block = leaf_lo | (leaf_hi << 32)
                if block >= blocks_count or block == 0:
                    raise ImageFormatError(f"extent index points at block {block}, outside the filesystem")
                if block in visited:
                    raise ImageFormatError(f"extent tree visits block {block} twice")
                visited.add(block)
                children.append(block)
            if len(visited) > blocks_count:
                raise ImageFormatError("extent tree larger than the filesystem")
            # Reversed, so the leftmost child is popped (and read) first.
            stack.extend((read_block(block), depth - 1) for block in reversed(children))
            continue
        for i in range(entries):
            logical, length, start_hi, start_lo = _LEAF.unpack_from(node, 12 + 12 * i)
            uninit = length > _UNINIT_LEN
            if uninit:
                length -= _UNINIT_LEN
            if length == 0:
                continue
            physical = start_lo | (start_hi << 32)
            if logical < next_logical:
                raise ImageFormatError(f"extents overlap at logical block {logical}")
            if logical >= file_blocks:
                # Preallocated past the end (fallocate KEEP_SIZE): not content.
                next_logical = logical + length
                continue
            length = min(length, file_blocks - logical)
            if physical == 0 or physical + length > blocks_count:
                raise ImageFormatError(f"extent points at blocks {physical}+{length}, outside the filesystem")
            runs.append((logical, physical, length, uninit))
            next_logical = logical + length
    return runs


def indirect_runs(
    i_block: bytes, file_blocks: int, blocks_count: int, block_size: int, read_block: ReadBlock
) -> list[Run]:
    """Runs of a block-mapped inode: 12 direct pointers, then single, double, triple indirect."""
    per_block = block_size // 4
    unpack_block = struct.Struct(f"<{per_block}I").unpack_from
    pointers = struct.unpack_from("<15I", i_block)
    runs: list[list[int]] = []
    mapped = 0
    budget = min(file_blocks, blocks_count)
    indirect_seen = 0

    def add(logical: int, physical: int) -> None:
        nonlocal mapped
        if physical >= blocks_count:
            raise ImageFormatError(f"block pointer {physical} outside the filesystem")
        mapped += 1
        if mapped > budget:
            raise ImageFormatError("block map maps more blocks than the file or filesystem has")
        if runs and runs[-1][0] + runs[-1][2] == logical and runs[-1][1] + runs[-1][2] == physical:
            runs[-1][2] += 1
        else:
            runs.append([logical, physical, 1])

    def walk(block: int, level: int, first_logical: int) -> None:
        nonlocal indirect_seen
        if block >= blocks_count:
            raise ImageFormatError(f"indirect block {block} outside the filesystem")
        indirect_seen += 1
        if indirect_seen > blocks_count:
            raise ImageFormatError("block map has more indirect blocks than the filesystem")
        span = per_block**level
        for i, pointer in enumerate(unpack_block(read_block(block))):
            logical = first_logical + i * span
            if logical >= file_blocks:
                return
            if not pointer:
                continue
            if level == 0:
                add(logical, pointer)
            else:
                walk(pointer, level - 1, logical)

    for i in range(min(12, file_blocks)):
        if pointers[i]:
            add(i, pointers[i])
    first = 12
    for level, pointer in enumerate(pointers[12:15]):
        if first >= file_blocks:
            break
        if pointer:
            walk(pointer, level, first)
        first += per_block ** (level + 1)
    return [(logical, physical, count, False) for logical, physical, count in runs]
