"""What the ext4 reader returns: one ``Entry`` per path and the ``FilesystemInfo``.

Both are frozen: the auditor and the differ keep them in sets and dicts, and
nothing downstream may patch what was read from the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nexlab.display import Summarized
from nexlab.sizes import format_size

#: ``Entry.type`` values, keyed by the S_IFMT bits of i_mode.
TYPES = {
    0o100000: "file",
    0o040000: "dir",
    0o120000: "symlink",
    0o020000: "char",
    0o060000: "block",
    0o010000: "fifo",
    0o140000: "socket",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One path in the image, with its inode's metadata.

    Hardlinks give several entries with the same ``inode``. ``mode`` holds only the
    permission bits (with setuid/setgid/sticky); the type is in ``type``. Times are
    signed epoch seconds. ``allocated`` is what the inode occupies on disk, bytes.
    """

    path: str
    inode: int
    type: str
    mode: int
    uid: int
    gid: int
    size: int
    allocated: int
    nlink: int
    mtime: int
    atime: int
    ctime: int
    crtime: int | None
    target: str | None = None
    xattrs: dict[str, bytes] = field(default_factory=dict, hash=False)
    rdev: tuple[int, int] | None = None
    flags: int = 0
    inline: bool = False

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1] or "/"


@dataclass(frozen=True, slots=True)
class FilesystemInfo(Summarized):
    """The superblock, decoded, plus a few facts computed from the group layout."""

    image_bytes: int
    size_bytes: int
    block_size: int
    blocks_count: int
    free_blocks: int
    reserved_blocks: int
    inodes_count: int
    free_inodes: int
    inode_size: int
    first_data_block: int
    groups: int
    features: tuple[str, ...]
    uuid: str
    label: str
    state: str
    created: int | None
    last_mount: int | None
    last_write: int | None
    last_check: int | None
    mount_count: int
    last_mounted_path: str
    hash_seed: str
    journal_inode: int
    journal_bytes: int
    needs_recovery: bool
    overhead_bytes: int
    kind: str
    #: Added beyond the documented API: handy for reports, cheap to carry.
    blocks_per_group: int = 0
    inodes_per_group: int = 0
    desc_size: int = 32
    revision: int = 1
    #: Allocation unit: the block size, or a cluster of blocks with bigalloc.
    cluster_size: int = 0

    def summary(self) -> str:
        free = format_size(self.free_blocks * self.block_size)
        return (
            f"{self.kind} {format_size(self.size_bytes)}, {self.block_size}-byte blocks, {free} free, "
            f"{self.inodes_count - self.free_inodes}/{self.inodes_count} inodes, uuid {self.uuid}"
        )
