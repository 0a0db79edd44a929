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


# The slots' own setters, bound once: ``object.__setattr__`` through the frozen dataclass's
# generic path costs about twice as much, and the reader's walk makes one Entry per path.
_new = object.__new__
_SETTERS = {name: getattr(Entry, name).__set__ for name in Entry.__slots__}
_set_path = _SETTERS["path"]
_set_inode = _SETTERS["inode"]
_set_type = _SETTERS["type"]
_set_mode = _SETTERS["mode"]
_set_uid = _SETTERS["uid"]
_set_gid = _SETTERS["gid"]
_set_size = _SETTERS["size"]
_set_allocated = _SETTERS["allocated"]
_set_nlink = _SETTERS["nlink"]
_set_mtime = _SETTERS["mtime"]
_set_atime = _SETTERS["atime"]
_set_ctime = _SETTERS["ctime"]
_set_crtime = _SETTERS["crtime"]
_set_target = _SETTERS["target"]
_set_xattrs = _SETTERS["xattrs"]
_set_rdev = _SETTERS["rdev"]
_set_flags = _SETTERS["flags"]
_set_inline = _SETTERS["inline"]


def plain_file_entry(
    path: str,
    inode: int,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    allocated: int,
    nlink: int,
    mtime: int,
    atime: int,
    ctime: int,
    crtime: int | None,
    flags: int,
    inline: bool,
) -> Entry:
    """``Entry(path, inode, "file", ..., target=None, xattrs={}, rdev=None, ...)``, the same
    object at about half the cost (tests/image/test_fast_paths.py checks they are equal and
    that every field is set)."""
    entry: Entry = _new(Entry)
    _set_path(entry, path)
    _set_inode(entry, inode)
    _set_type(entry, "file")
    _set_mode(entry, mode)
    _set_uid(entry, uid)
    _set_gid(entry, gid)
    _set_size(entry, size)
    _set_allocated(entry, allocated)
    _set_nlink(entry, nlink)
    _set_mtime(entry, mtime)
    _set_atime(entry, atime)
    _set_ctime(entry, ctime)
    _set_crtime(entry, crtime)
    _set_target(entry, None)
    _set_xattrs(entry, {})
    _set_rdev(entry, None)
    _set_flags(entry, flags)
    _set_inline(entry, inline)
    return entry
