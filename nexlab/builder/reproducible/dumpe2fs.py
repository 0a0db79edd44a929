"""Which inodes an image uses, read from ``dumpe2fs``'s per-group free-inode lists."""

from __future__ import annotations

import re
from pathlib import Path

from nexlab.builder.mkfs import superblock_facts
from nexlab.run import run

#: The inodes mke2fs reserves (1, 3–10) hold no file; 2 is the root, 11 lost+found.
_RESERVED = frozenset(range(1, 11)) - {2}
_GROUP = re.compile(r"^Group (\d+):")


def in_use_inodes(image: Path) -> list[int]:
    """Inode numbers marked in use in the bitmaps, without the reserved ones."""
    per_group = int(superblock_facts(image)["Inodes per group"])
    return parse_in_use(run(["dumpe2fs", str(image)]).stdout, per_group)


def parse_in_use(output: str, per_group: int) -> list[int]:
    """The in-use inodes of a ``dumpe2fs`` listing whose groups hold ``per_group`` inodes each."""
    used: list[int] = []
    group = -1
    for line in output.splitlines():
        heading = _GROUP.match(line)
        if heading:
            group = int(heading.group(1))
            continue
        stripped = line.strip()
        if group < 0 or not stripped.startswith("Free inodes:"):
            continue
        first, last = group * per_group + 1, (group + 1) * per_group
        free: set[int] = set()
        for part in stripped.removeprefix("Free inodes:").split(","):
            part = part.strip()
            if not part:
                continue
            low, _, high = part.partition("-")
            free.update(range(int(low), int(high or low) + 1))
        used.extend(n for n in range(first, last + 1) if n not in free and n not in _RESERVED)
    return used
