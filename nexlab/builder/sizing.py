"""How big an image must be to hold some content.

The filesystem's own overhead (journal, inode tables, bitmaps) grows with the
image size in steps, so rather than re-derive mke2fs's rules we ask mke2fs: make
the candidate filesystem in a sparse scratch file (a few milliseconds), read its
free blocks and inodes, and grow the candidate until the content fits.
"""

from __future__ import annotations

from nexlab import tempdirs
from nexlab.builder.mkfs import MkfsOptions, make_filesystem, superblock_facts

_MIB = 2**20
#: Headroom over the extraction's count (``nexlab.builder.extract``), which is within
#: 0.1 % of what ext4 allocates for a Debian base: where the allocator splits extents
#: and htree directories split their leaves is not known in advance.
CONTENT_MARGIN = 1.10
DEFAULT_OPTIONS = MkfsOptions()


def usable(size: int, options: MkfsOptions = DEFAULT_OPTIONS) -> tuple[int, int]:
    """(free bytes, free inodes) of a fresh filesystem of ``size`` bytes made with ``options``."""
    with tempdirs.directory("sizing") as scratch:
        image = scratch / "probe.ext4"
        with image.open("wb") as handle:
            handle.truncate(size)
        make_filesystem(image, options)
        facts = superblock_facts(image)
    block_size = int(facts["Block size"])
    free_blocks = int(facts["Free blocks"]) - int(facts.get("Reserved block count", "0"))
    return free_blocks * block_size, int(facts["Free inodes"])


def size_for_content(content_bytes: int, content_files: int, options: MkfsOptions = DEFAULT_OPTIONS) -> int:
    """The smallest whole number of MiB whose filesystem holds the content with margin."""
    need_bytes = int(content_bytes * CONTENT_MARGIN)
    need_inodes = int(content_files * CONTENT_MARGIN) + 16
    candidate = max(-(-need_bytes // _MIB) * _MIB, 8 * _MIB)
    for _ in range(20):
        free_bytes, free_inodes = usable(candidate, options)
        if free_bytes >= need_bytes and free_inodes >= need_inodes:
            return candidate
        short_bytes = max(0, need_bytes - free_bytes)
        short_inodes = max(0, need_inodes - free_inodes) * options.bytes_per_inode
        candidate += -(-max(short_bytes, short_inodes, _MIB) // _MIB) * _MIB
    return candidate
