"""The reproducible build for a normal user (no root, only access to Docker): owners kept aside.

A normal user extracting the setup container's export (``nexlab.builder.extract``)
can keep neither owners nor setuid bits nor security xattrs, and could not read
back a tree that kept them (``/etc/shadow`` is 0640 root). So the extraction
makes every file ours and records, per path, the ``Owner`` it should have; after
``mkfs.ext4 -d`` debugfs puts those owners, modes and xattrs on the inodes, and
the image has the same bytes as a root build of the same inputs.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

_TYPE_BITS = {
    "file": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "fifo": stat.S_IFIFO,
    "socket": stat.S_IFSOCK,
}


@dataclass(frozen=True)
class Owner:
    """What a normal user cannot keep on the host: owner, full permission bits, security xattrs."""

    uid: int
    gid: int
    #: Permission bits including setuid/setgid/sticky (no file type).
    mode: int
    xattrs: tuple[tuple[str, bytes], ...] = field(default=())


def owner_commands(image: Path, owners: dict[str, Owner], scratch: Path) -> tuple[list[str], int]:
    """debugfs commands that give every inode of ``image`` the owner, mode and xattrs recorded
    for its path (xattr values go to files in ``scratch``); and how many inodes they touch.

    They run in the same debugfs session as the time pinning: a separate session would
    add its own writes to the superblock's lifetime-writes counter, and the image would
    differ from a root build of the same inputs in those bytes.
    """
    from nexlab.image import open_image

    lines: list[str] = []
    done: set[int] = set()
    with open_image(image) as fs:
        for entry in fs.walk():
            owner = owners.get(entry.path)
            if owner is None or entry.inode in done:
                continue
            done.add(entry.inode)
            inode = f"<{entry.inode}>"
            lines.append(f"sif {inode} uid {owner.uid}")
            lines.append(f"sif {inode} gid {owner.gid}")
            lines.append(f"sif {inode} mode 0{_TYPE_BITS[entry.type] | owner.mode:o}")
            for index, (name, value) in enumerate(owner.xattrs):
                value_file = scratch / f"xattr-{entry.inode}-{index}"
                value_file.write_bytes(value)
                lines.append(f"ea_set -f {value_file} {inode} {name}")
    return lines, len(done)
