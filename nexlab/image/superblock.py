"""The ext2/3/4 superblock and group layout.

``parse_superblock`` checks everything later code relies on (sizes, counts,
powers of two) so the inode and block code can trust its ``Geometry``; anything
unreadable is an ``ImageFormatError`` here, before a single inode is touched.
"""

from __future__ import annotations

import os
import struct
import uuid as uuidlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from nexlab.errors import ImageFormatError

SUPERBLOCK_OFFSET = 1024
MAGIC_OFFSET = 1080
EXT_MAGIC = 0xEF53

# Feature bits, named as e2p (dumpe2fs) names them.
COMPAT = {
    0x1: "dir_prealloc",
    0x2: "imagic_inodes",
    0x4: "has_journal",
    0x8: "ext_attr",
    0x10: "resize_inode",
    0x20: "dir_index",
    0x40: "lazy_bg",
    0x100: "snapshot_bitmap",
    0x200: "sparse_super2",
    0x400: "fast_commit",
    0x800: "stable_inodes",
    0x1000: "orphan_file",
}
INCOMPAT = {
    0x1: "compression",
    0x2: "filetype",
    0x4: "needs_recovery",
    0x8: "journal_dev",
    0x10: "meta_bg",
    0x40: "extent",
    0x80: "64bit",
    0x100: "mmp",
    0x200: "flex_bg",
    0x400: "ea_inode",
    0x1000: "dirdata",
    0x2000: "metadata_csum_seed",
    0x4000: "large_dir",
    0x8000: "inline_data",
    0x10000: "encrypt",
    0x20000: "casefold",
}
RO_COMPAT = {
    0x1: "sparse_super",
    0x2: "large_file",
    0x4: "btree_dir",
    0x8: "huge_file",
    0x10: "uninit_bg",
    0x20: "dir_nlink",
    0x40: "extra_isize",
    0x80: "snapshot",
    0x100: "quota",
    0x200: "bigalloc",
    0x400: "metadata_csum",
    0x800: "replica",
    0x1000: "read-only",
    0x2000: "project",
    0x4000: "shared_blocks",
    0x8000: "verity",
}

INCOMPAT_FILETYPE = 0x2
INCOMPAT_NEEDS_RECOVERY = 0x4
INCOMPAT_LARGE_DIR = 0x4000
INCOMPAT_META_BG = 0x10
INCOMPAT_64BIT = 0x80
INCOMPAT_INLINE_DATA = 0x8000
INCOMPAT_EA_INODE = 0x400
RO_COMPAT_SPARSE_SUPER = 0x1
RO_COMPAT_HUGE_FILE = 0x8
RO_COMPAT_BIGALLOC = 0x200
COMPAT_SPARSE_SUPER2 = 0x200

#: Incompat features the reader understands (reading ignores what only matters for writing).
INCOMPAT_READABLE = 0x2 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000 | 0x4000 | 0x8000 | 0x20000
#: Incompat features that leave the metadata readable but some answers wrong: a warning each.
INCOMPAT_PARTIAL = {
    0x1000: "dirdata: directory entries carry extra data the reader skips",
    0x10000: "encrypt: encrypted names and contents are read as stored (ciphertext)",
}
#: Incompat features that make the file something other than a filesystem we can read.
INCOMPAT_FATAL = {
    0x1: "compression (an abandoned ext2 patch)",
    0x8: "journal_dev (this is an external journal, not a filesystem)",
}

# Only the fields we use; offsets are relative to the superblock (image offset 1024).
_SB = struct.Struct(
    "<IIIIIIIIIIIII"  # 0x00 inodes_count .. 0x30 wtime
    "HhHHHH"  # 0x34 mnt_count, max_mnt_count, magic, state, errors, minor_rev
    "IIII"  # 0x40 lastcheck, checkinterval, creator_os, rev_level
    "HH"  # 0x50 def_resuid, def_resgid
    "IHH"  # 0x54 first_ino, inode_size, block_group_nr
    "III"  # 0x5c feature compat, incompat, ro_compat
    "16s16s64s"  # 0x68 uuid, volume_name, last_mounted
    "I"  # 0xc8 algorithm usage bitmap
    "BBH"  # 0xcc prealloc, prealloc dir, reserved_gdt_blocks
    "16sII"  # 0xd0 journal_uuid, journal_inum, journal_dev
    "I16sBBH"  # 0xe8 last_orphan, hash_seed, def_hash_version, jnl_backup_type, desc_size
    "III"  # 0x100 default_mount_opts, first_meta_bg, mkfs_time
    "68s"  # 0x10c jnl_blocks
    "III"  # 0x150 blocks_count_hi, r_blocks_count_hi, free_blocks_hi
)
_SB_OVERHEAD = struct.Struct("<I")  # 0x248 s_overhead_clusters
_SB_BACKUP_BGS = struct.Struct("<II")  # 0x24c s_backup_bgs
_SB_TIME_HI = struct.Struct("<BBBB")  # 0x274 wtime_hi, mtime_hi, mkfs_time_hi, lastcheck_hi


@dataclass(frozen=True)
class Geometry:
    """The numbers the inode, block and directory code needs, validated."""

    block_size: int
    blocks_count: int
    first_data_block: int
    blocks_per_group: int
    inodes_per_group: int
    inodes_count: int
    inode_size: int
    groups: int
    desc_size: int
    compat: int
    incompat: int
    ro_compat: int
    first_meta_bg: int
    reserved_gdt_blocks: int
    backup_bgs: tuple[int, int]
    journal_inode: int
    stored_overhead: int
    revision: int
    #: Blocks per allocation cluster (bigalloc), 1 otherwise.
    cluster_ratio: int = 1

    @cached_property
    def is_64bit(self) -> bool:
        return bool(self.incompat & INCOMPAT_64BIT)

    @cached_property
    def huge_file(self) -> bool:
        return bool(self.ro_compat & RO_COMPAT_HUGE_FILE)

    @cached_property
    def descs_per_block(self) -> int:
        return self.block_size // self.desc_size

    @property
    def gdt_blocks(self) -> int:
        return -(-self.groups // self.descs_per_block)

    def has_super(self, group: int) -> bool:
        """Whether ``group`` carries a superblock backup (and so the GDT copy)."""
        if group == 0:
            return True
        if self.compat & COMPAT_SPARSE_SUPER2:
            return group in self.backup_bgs
        if group <= 1 or not self.ro_compat & RO_COMPAT_SPARSE_SUPER:
            return True
        if not group & 1:
            return False
        for base in (3, 5, 7):
            power = base
            while power < group:
                power *= base
            if power == group:
                return True
        return False

    def group_first_block(self, group: int) -> int:
        return self.first_data_block + group * self.blocks_per_group

    def descriptor_block(self, index: int) -> int:
        """Block holding the ``index``-th block of group descriptors (meta_bg aware)."""
        # bigalloc on 1 KiB blocks has first_data_block 0, yet the superblock is still
        # block 1 (byte 1024) and the descriptors follow it (e2fsprogs does the same).
        superblock = self.first_data_block or (1 if self.block_size == 1024 else 0)
        if not self.incompat & INCOMPAT_META_BG or index < self.first_meta_bg:
            return superblock + 1 + index
        group = index * self.descs_per_block
        first = self.group_first_block(group)
        if group == 0:
            first = superblock
        return first + (1 if self.has_super(group) else 0)

    def count_super(self, start: int, stop: int) -> int:
        """How many groups in [start, stop) carry a superblock backup, without visiting each."""
        if stop <= start:
            return 0
        if self.compat & COMPAT_SPARSE_SUPER2:
            holders = {0, *(g for g in self.backup_bgs if g)}
        elif not self.ro_compat & RO_COMPAT_SPARSE_SUPER:
            return stop - start
        else:
            holders = {0, 1}
            for base in (3, 5, 7):
                power = base
                while power < stop:
                    holders.add(power)
                    power *= base
        return sum(1 for g in holders if start <= g < stop)

    @property
    def inode_table_blocks(self) -> int:
        return -(-self.inodes_per_group * self.inode_size // self.block_size)

    def overhead_blocks(self) -> int:
        """Blocks the filesystem's own structures take, counted as the kernel's statfs does.

        Superblock copies, descriptor blocks (meta_bg aware) and reserved GDT
        blocks, two bitmaps and an inode table per group; not the journal.
        """
        per_super = 1 + self.reserved_gdt_blocks
        if not self.incompat & INCOMPAT_META_BG:
            base = self.count_super(0, self.groups) * (per_super + self.gdt_blocks)
        else:
            dpb = self.descs_per_block
            cut = min(self.groups, self.first_meta_bg * dpb)
            base = self.count_super(0, cut) * (per_super + self.first_meta_bg) + self.count_super(cut, self.groups)
            for metagroup in range(self.first_meta_bg, -(-self.groups // dpb)):
                first = metagroup * dpb
                base += len({g for g in (first, first + 1, first + dpb - 1) if g < self.groups})
        return self.first_data_block + base + self.groups * (2 + self.inode_table_blocks)

    @property
    def cluster_size(self) -> int:
        return self.block_size * self.cluster_ratio

    def overhead_bytes(self, journal_bytes: int) -> int:
        """What statfs leaves out of the total, as the kernel decides it.

        On bigalloc the kernel trusts the superblock's ``s_overhead_clusters``
        (journal included) unless it is absurd, since recounting is slow there;
        otherwise it recounts, which ``overhead_blocks`` mirrors.
        """
        if self.cluster_ratio > 1 and 0 < self.stored_overhead <= self.blocks_count:
            return self.stored_overhead * self.cluster_size
        return self.overhead_blocks() * self.block_size + journal_bytes


def feature_names(compat: int, incompat: int, ro_compat: int) -> tuple[str, ...]:
    """Feature names in dumpe2fs order (compat, incompat, ro_compat; bit order within each)."""
    names: list[str] = []
    for letter, mask, table in (("C", compat, COMPAT), ("I", incompat, INCOMPAT), ("R", ro_compat, RO_COMPAT)):
        for bit in range(32):
            if mask & (1 << bit):
                names.append(table.get(1 << bit, f"FEATURE_{letter}{bit}"))
    return tuple(names)


def _time(low: int, high: int) -> int | None:
    value = low | (high << 32)
    return value or None


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _state(state: int) -> str:
    text = "clean" if state & 1 else "not clean"
    if state & 2:
        text += " with errors"
    if state & 4:
        text += " (orphans being recovered)"
    return text


def _kind(compat: int, incompat: int, ro_compat: int) -> str:
    ext4_incompat = 0x40 | 0x80 | 0x200 | 0x400 | 0x4000 | 0x8000 | 0x10 | 0x100
    ext4_ro = 0x8 | 0x10 | 0x20 | 0x40 | 0x200 | 0x400 | 0x2000 | 0x8000
    if incompat & ext4_incompat or ro_compat & ext4_ro:
        return "ext4"
    return "ext3" if compat & 0x4 else "ext2"


@dataclass(frozen=True)
class Superblock:
    geometry: Geometry
    free_blocks: int
    reserved_blocks: int
    free_inodes: int
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
    warnings: tuple[str, ...]


def check_magic(fd: int, path: Path) -> int:
    """The size of the open image ``fd``, if it starts like an ext2/3/4 filesystem.

    Checked before anything else reads the file: libarchive, for one, reads an
    ext4 image as an empty tar without complaint.
    """
    size = os.fstat(fd).st_size
    if size < SUPERBLOCK_OFFSET + 1024:
        raise ImageFormatError(f"{path}: {size} bytes, too small for an ext filesystem")
    if os.pread(fd, 2, MAGIC_OFFSET) != b"\x53\xef":
        hint = "decompress it first" if path.suffix in (".gz", ".xz", ".zst") else None
        raise ImageFormatError(f"{path} is not an ext2/3/4 image (no 0xEF53 magic at offset {MAGIC_OFFSET})", hint=hint)
    return size


def parse_superblock(raw: bytes | memoryview, image_bytes: int) -> Superblock:
    """Decode and validate the 1 KiB primary superblock (``raw`` starts at image offset 1024)."""
    if len(raw) < 1024:
        raise ImageFormatError("image too small to hold an ext superblock")
    f = _SB.unpack_from(raw, 0)
    (
        inodes_count,
        blocks_lo,
        r_blocks_lo,
        free_blocks_lo,
        free_inodes,
        first_data_block,
        log_block_size,
        log_cluster_size,
        blocks_per_group,
        clusters_per_group,
        inodes_per_group,
        mtime,
        wtime,
        mnt_count,
        _max_mnt,
        magic,
        state,
        _errors,
        _minor,
        lastcheck,
        _interval,
        _creator,
        rev_level,
        _resuid,
        _resgid,
        _first_ino,
        inode_size,
        _bg_nr,
        compat,
        incompat,
        ro_compat,
        uuid_raw,
        volume_name,
        last_mounted,
        _algo,
        _prealloc,
        _prealloc_dir,
        reserved_gdt,
        _journal_uuid,
        journal_inum,
        _journal_dev,
        _last_orphan,
        hash_seed,
        _hash_version,
        _jnl_backup,
        desc_size,
        _mount_opts,
        first_meta_bg,
        mkfs_time,
        _jnl_blocks,
        blocks_hi,
        r_blocks_hi,
        free_blocks_hi,
    ) = f
    if magic != EXT_MAGIC:
        raise ImageFormatError(f"not an ext2/3/4 image: magic 0x{magic:04x} at offset {MAGIC_OFFSET}, not 0xef53")
    warnings: list[str] = []
    for bit, why in INCOMPAT_FATAL.items():
        if incompat & bit:
            raise ImageFormatError(f"unsupported ext feature {why}")
    for bit, why in INCOMPAT_PARTIAL.items():
        if incompat & bit:
            warnings.append(f"feature {why}")
    unknown = incompat & ~(INCOMPAT_READABLE | sum(INCOMPAT_PARTIAL) | sum(INCOMPAT_FATAL))
    if unknown:
        warnings.append(f"unknown incompatible features 0x{unknown:x}: the answers may be wrong")
    if log_block_size > 6:
        raise ImageFormatError(f"corrupt superblock: block size 2^{10 + log_block_size}")
    block_size = 1024 << log_block_size
    is_64bit = bool(incompat & INCOMPAT_64BIT)
    blocks_count = blocks_lo | ((blocks_hi << 32) if is_64bit else 0)
    reserved_blocks = r_blocks_lo | ((r_blocks_hi << 32) if is_64bit else 0)
    free_blocks = free_blocks_lo | ((free_blocks_hi << 32) if is_64bit else 0)
    if rev_level == 0:
        inode_size = 128
    if inode_size < 128 or inode_size > block_size or inode_size & (inode_size - 1):
        raise ImageFormatError(f"corrupt superblock: inode size {inode_size}")
    if is_64bit:
        if desc_size < 32 or desc_size > 1024 or desc_size & (desc_size - 1):
            raise ImageFormatError(f"corrupt superblock: group descriptor size {desc_size}")
    else:
        desc_size = 32
    # bigalloc allocates in clusters of 2^n blocks: the block bitmap has a bit per cluster,
    # so it is clusters (not blocks) per group that one bitmap block bounds, as in the kernel.
    cluster_ratio = 1
    if ro_compat & RO_COMPAT_BIGALLOC:
        if not log_block_size <= log_cluster_size <= log_block_size + 16:
            raise ImageFormatError(f"corrupt superblock: cluster size 2^{10 + log_cluster_size}")
        cluster_ratio = 1 << (log_cluster_size - log_block_size)
        if not 0 < clusters_per_group <= 8 * block_size or blocks_per_group != clusters_per_group * cluster_ratio:
            raise ImageFormatError(
                f"corrupt superblock: {clusters_per_group} clusters of {cluster_ratio} blocks per group "
                f"for {blocks_per_group} blocks per group"
            )
    elif not 0 < blocks_per_group <= 8 * block_size:
        raise ImageFormatError("corrupt superblock: blocks per group out of range")
    if not 0 < inodes_per_group <= 8 * block_size:
        raise ImageFormatError("corrupt superblock: inodes per group out of range")
    expected_first = 1 if block_size == 1024 else 0
    if first_data_block != expected_first and not (block_size == 1024 and first_data_block == 0):
        raise ImageFormatError(f"corrupt superblock: first data block {first_data_block}")
    if blocks_count <= first_data_block:
        raise ImageFormatError(f"corrupt superblock: {blocks_count} blocks")
    groups = -(-(blocks_count - first_data_block) // blocks_per_group)
    if groups * inodes_per_group != inodes_count:
        raise ImageFormatError(
            f"corrupt superblock: {groups} groups × {inodes_per_group} inodes ≠ {inodes_count} inodes"
        )
    overhead = _SB_OVERHEAD.unpack_from(raw, 0x248)[0]
    backup_bgs = _SB_BACKUP_BGS.unpack_from(raw, 0x24C)
    wtime_hi, mtime_hi, mkfs_hi, lastcheck_hi = _SB_TIME_HI.unpack_from(raw, 0x274) if rev_level else (0, 0, 0, 0)
    geometry = Geometry(
        block_size=block_size,
        blocks_count=blocks_count,
        first_data_block=first_data_block,
        blocks_per_group=blocks_per_group,
        inodes_per_group=inodes_per_group,
        inodes_count=inodes_count,
        inode_size=inode_size,
        groups=groups,
        desc_size=desc_size,
        compat=compat,
        incompat=incompat,
        ro_compat=ro_compat,
        first_meta_bg=first_meta_bg if incompat & INCOMPAT_META_BG else 0,
        reserved_gdt_blocks=reserved_gdt,
        backup_bgs=(backup_bgs[0], backup_bgs[1]),
        journal_inode=journal_inum if compat & 0x4 else 0,
        stored_overhead=overhead,
        revision=rev_level,
        cluster_ratio=cluster_ratio,
    )
    if geometry.gdt_blocks > blocks_count or groups * desc_size > image_bytes:
        raise ImageFormatError(f"corrupt superblock: {groups} block groups cannot fit in the image")
    if incompat & INCOMPAT_NEEDS_RECOVERY:
        warnings.append("journal needs recovery: reading the on-disk state, recent changes may be missing")
    return Superblock(
        geometry=geometry,
        free_blocks=free_blocks,
        reserved_blocks=reserved_blocks,
        free_inodes=free_inodes,
        uuid=str(uuidlib.UUID(bytes=bytes(uuid_raw))),
        label=_text(volume_name),
        state=_state(state),
        created=_time(mkfs_time, mkfs_hi),
        last_mount=_time(mtime, mtime_hi),
        last_write=_time(wtime, wtime_hi),
        last_check=_time(lastcheck, lastcheck_hi),
        mount_count=mnt_count,
        last_mounted_path=_text(last_mounted),
        hash_seed=str(uuidlib.UUID(bytes=bytes(hash_seed))),
        warnings=tuple(warnings),
    )


def kind_of(geometry: Geometry) -> str:
    return _kind(geometry.compat, geometry.incompat, geometry.ro_compat)
