"""A read-only ext2/3/4 reader that needs no mount and no root.

Why hand-written: the readers on PyPI do not fit. ``dissect.extfs`` is AGPL, which an
Apache-2.0 project cannot depend on; the MIT ``ext4`` package is 5–8× slower
than a loop mount; ``ext2py`` is a one-author alpha that misses external xattr
blocks. An audit hashes every file, so the design follows the data: the image
is mmapped once, metadata is decoded with ``struct.unpack_from`` on a
memoryview (no per-field objects; a plain regular file, most of any image, in
one unpack straight into its Entry), and file content is handed to hashlib as
memoryview slices of the mapping, which hashlib hashes with the GIL released,
so two threads use both cores; where each file's content lies is worked out
for all files at once, with numpy over the inode records.

A hostile image must not crash, hang or exhaust memory: everything read from it
is bounds-checked, corruption confined to one inode or directory becomes an
entry in ``warnings`` (a partial answer), and only an image that cannot be read
at all raises ``ImageFormatError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from nexlab.errors import ImageFormatError, InputError
from nexlab.image import blockmap, dirents, xattrs
from nexlab.image.model import TYPES, Entry, FilesystemInfo, plain_file_entry
from nexlab.image.superblock import (
    INCOMPAT_EA_INODE,
    INCOMPAT_FILETYPE,
    INCOMPAT_LARGE_DIR,
    INCOMPAT_NEEDS_RECOVERY,
    SUPERBLOCK_OFFSET,
    Geometry,
    check_magic,
    feature_names,
    kind_of,
    parse_superblock,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger("nexlab.image")

ROOT_INODE = 2
EXTENTS_FL = 0x80000
INLINE_DATA_FL = 0x10000000
HUGE_FILE_FL = 0x40000
EA_INODE_FL = 0x200000
S_IFMT = 0o170000
S_IFDIR = 0o040000
S_IFREG = 0o100000
S_IFLNK = 0o120000
S_IFCHR = 0o020000
S_IFBLK = 0o060000

MAX_HOPS = 40  # the kernel's MAXSYMLINKS
MAX_DIR_BYTES = 256 << 20
MAX_DIR_ENTRIES = 2_000_000
MAX_WARNINGS = 1000
#: Data handed out per chunk: big enough that hashlib releases the GIL for long stretches.
CHUNK = 8 << 20

_INODE = struct.Struct("<HHIIIIIHHII4x60sIII4xHHHH4x")
_EXTRA = struct.Struct("<H")
_DESC32 = struct.Struct("<III")  # block bitmap, inode bitmap, inode table (low 32 bits)
_DESC_HI = struct.Struct("<III")  # at offset 0x20 of 64-byte descriptors
_U32 = struct.Struct("<I")
#: ctime/mtime/atime _extra, crtime, crtime_extra: the words at 0x84..0x98.
_TIMES_EXTRA = struct.Struct("<IIIII")
_ZEROS = bytes(1 << 20)
#: mode, i_size_lo, i_flags, the in-inode extent header (magic, entries, max, depth), i_size_high.
_FAST = struct.Struct("<H2xI24xI4xHHHH4x48x8xI")
_LEAF = struct.Struct("<IHHI")
_SIZES = struct.Struct("<I100xI")  # i_size_lo at 4, i_size_high at 108
#: The walk's fast path: every field an Entry of a plain regular file needs, in one unpack of
#: the first 164 bytes (i_block skipped; i_extra_isize, the four time _extra words and crtime;
#: the in-inode xattr magic where i_extra_isize is the usual 32).
_WALK = struct.Struct("<HHIIII4xHHII4x60x4xII4xHHHH4xH2xIIIII8xI")
#: The i_extra_isize the fast path takes (sizeof(struct ext4_inode) - 128, what mke2fs and the
#: kernel write); any other value goes the general way, which checks and warns.
_FAST_EXTRA = 32
_UNINIT_LEN = 32768
#: A hashing batch: this many bytes of data (a file counts _FILE_COST more), so a batch is
#: milliseconds of work: the threads trade batches, not files, and rarely contend.
_BATCH_BYTES = 4 << 20
_FILE_COST = 4096
#: Files this big are a batch of their own, hashed first.
_BIG_FILE = 16 << 20


class _Inode:
    """One decoded inode record; built per use, never kept across calls."""

    __slots__ = (
        "atime",
        "blocks",
        "crtime",
        "ctime",
        "extra_end",
        "file_acl",
        "flags",
        "gid",
        "i_block",
        "ino",
        "links",
        "mode",
        "mtime",
        "raw",
        "size",
        "uid",
    )

    def __init__(self, ino: int, raw: memoryview, geometry: Geometry, warnings: list[str]) -> None:
        (
            mode,
            uid_lo,
            size_lo,
            atime,
            ctime,
            mtime,
            _dtime,
            gid_lo,
            links,
            blocks_lo,
            flags,
            i_block,
            _generation,
            acl_lo,
            size_hi,
            blocks_hi,
            acl_hi,
            uid_hi,
            gid_hi,
        ) = _INODE.unpack_from(raw, 0)
        self.ino = ino
        self.raw = raw
        self.mode = mode
        self.uid = uid_lo | (uid_hi << 16)
        self.gid = gid_lo | (gid_hi << 16)
        kind = mode & S_IFMT
        self.size = size_lo | (size_hi << 32) if kind == S_IFREG or geometry.incompat & INCOMPAT_LARGE_DIR else size_lo
        self.links = links
        self.flags = flags
        self.i_block = i_block
        self.file_acl = acl_lo | ((acl_hi << 32) if geometry.is_64bit else 0)
        if geometry.huge_file:
            blocks = blocks_lo | (blocks_hi << 32)
            self.blocks = blocks * (geometry.block_size if flags & HUGE_FILE_FL else 512)
        else:
            self.blocks = blocks_lo * 512
        extra = 0
        if geometry.inode_size > 128:
            extra = _EXTRA.unpack_from(raw, 128)[0]
            if extra & 3 or 128 + extra > geometry.inode_size:
                warnings.append(f"inode {ino}: bad i_extra_isize {extra}")
                extra = 0
        self.extra_end = 128 + extra
        atime_s, ctime_s, mtime_s = _signed(atime), _signed(ctime), _signed(mtime)
        self.crtime: int | None = None
        # The _extra words add two epoch bits (dates past 2038) when i_extra_isize covers them.
        if extra >= 24:
            # The common case (256-byte inodes, i_extra_isize 32): all five words in one unpack.
            ctime_x, mtime_x, atime_x, crtime, crtime_x = _TIMES_EXTRA.unpack_from(raw, 0x84)
            ctime_s += (ctime_x & 3) << 32
            mtime_s += (mtime_x & 3) << 32
            atime_s += (atime_x & 3) << 32
            self.crtime = _signed(crtime) + ((crtime_x & 3) << 32)
        else:
            if extra >= 8:
                ctime_s += (_U32.unpack_from(raw, 0x84)[0] & 3) << 32
            if extra >= 12:
                mtime_s += (_U32.unpack_from(raw, 0x88)[0] & 3) << 32
            if extra >= 16:
                atime_s += (_U32.unpack_from(raw, 0x8C)[0] & 3) << 32
            if extra >= 20:
                self.crtime = _signed(_U32.unpack_from(raw, 0x90)[0])
        self.atime = atime_s
        self.ctime = ctime_s
        self.mtime = mtime_s


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


class Ext4Image:
    """An open image: ``info``, ``warnings``, ``walk()``, ``lookup()`` and content readers.

    Use it as a context manager (``open_image``); ``close()`` unmaps the file.
    Memoryviews handed out by ``iter_chunks`` are valid until then.
    """

    def __init__(self, path: str | os.PathLike[str], *, hole_budget: int | None = None) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        self._lock = threading.Lock()
        self._dir_cache: dict[int, dict[bytes, int]] = {}
        self._ea_cache: dict[int, dict[str, bytes]] = {}
        self._itable: dict[int, int] = {}
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise InputError(f"cannot open image {self.path}: {exc.strerror}") from exc
        try:
            self.image_bytes = check_magic(fd, self.path)
            self._mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        self._view = memoryview(self._mm)
        try:
            self._open(hole_budget)
        except BaseException:
            self.close()
            raise

    def _open(self, hole_budget: int | None) -> None:
        sb = parse_superblock(self._view[SUPERBLOCK_OFFSET : SUPERBLOCK_OFFSET + 1024], self.image_bytes)
        g = self.geometry = sb.geometry
        self.warnings.extend(sb.warnings)
        self._filetype = bool(g.incompat & INCOMPAT_FILETYPE)
        size_bytes = g.blocks_count * g.block_size
        if self.image_bytes < size_bytes:
            self._warn(f"image is {self.image_bytes} bytes but the filesystem spans {size_bytes}: truncated?")
        # The first block of descriptors must be readable, or nothing is.
        self._descriptor(0)
        #: Zero bytes of holes the reader may hand out in total (a hostile size field
        #: must not make us hash terabytes of zeros).
        self.hole_budget = hole_budget if hole_budget is not None else max(1 << 32, 4 * size_bytes)
        journal_bytes = 0
        if g.journal_inode:
            try:
                journal_bytes = self._inode(g.journal_inode).size
            except ImageFormatError as exc:
                self._warn(f"journal inode: {exc}")
        self.info = FilesystemInfo(
            image_bytes=self.image_bytes,
            size_bytes=size_bytes,
            block_size=g.block_size,
            blocks_count=g.blocks_count,
            free_blocks=sb.free_blocks,
            reserved_blocks=sb.reserved_blocks,
            inodes_count=g.inodes_count,
            free_inodes=sb.free_inodes,
            inode_size=g.inode_size,
            first_data_block=g.first_data_block,
            groups=g.groups,
            features=feature_names(g.compat, g.incompat, g.ro_compat),
            uuid=sb.uuid,
            label=sb.label,
            state=sb.state,
            created=sb.created,
            last_mount=sb.last_mount,
            last_write=sb.last_write,
            last_check=sb.last_check,
            mount_count=sb.mount_count,
            last_mounted_path=sb.last_mounted_path,
            hash_seed=sb.hash_seed,
            journal_inode=g.journal_inode,
            journal_bytes=journal_bytes,
            needs_recovery=bool(g.incompat & INCOMPAT_NEEDS_RECOVERY),
            overhead_bytes=g.overhead_bytes(journal_bytes),
            kind=kind_of(g),
            blocks_per_group=g.blocks_per_group,
            inodes_per_group=g.inodes_per_group,
            desc_size=g.desc_size,
            revision=g.revision,
            cluster_size=g.cluster_size,
        )

    # -- resources -------------------------------------------------------------------------

    def __enter__(self) -> Ext4Image:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        view = getattr(self, "_view", None)
        if view is not None:
            view.release()
            self._view = None  # type: ignore[assignment]
        mm = getattr(self, "_mm", None)
        if mm is not None:
            # Slices a caller still holds keep the mapping alive; it goes with them.
            with contextlib.suppress(BufferError):
                mm.close()
            self._mm = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Ext4Image {self.path}>"

    def _warn(self, message: str) -> None:
        with self._lock:
            if len(self.warnings) < MAX_WARNINGS:
                self.warnings.append(message)
            elif len(self.warnings) == MAX_WARNINGS:
                self.warnings.append("too many problems; further warnings dropped")

    # -- low level -------------------------------------------------------------------------

    def _bytes(self, offset: int, length: int) -> memoryview:
        if offset < 0 or offset + length > self.image_bytes:
            raise ImageFormatError(f"read of {length} bytes at {offset} past the end of the image file")
        return self._view[offset : offset + length]

    def _block(self, number: int) -> memoryview:
        g = self.geometry
        if number >= g.blocks_count:
            raise ImageFormatError(f"block {number} outside the filesystem")
        return self._bytes(number * g.block_size, g.block_size)

    def _descriptor(self, group: int) -> int:
        """Inode table block of ``group``."""
        cached = self._itable.get(group)
        if cached is not None:
            return cached
        g = self.geometry
        index, slot = divmod(group, g.descs_per_block)
        raw = self._block(g.descriptor_block(index))
        offset = slot * g.desc_size
        table = _DESC32.unpack_from(raw, offset)[2]
        if g.is_64bit and g.desc_size >= 64:
            table |= _DESC_HI.unpack_from(raw, offset + 0x20)[2] << 32
        if table == 0 or table + g.inode_table_blocks > g.blocks_count:
            raise ImageFormatError(f"group {group}: inode table at block {table} is outside the filesystem")
        self._itable[group] = table
        return table

    def _inode(self, ino: int) -> _Inode:
        g = self.geometry
        if not 0 < ino <= g.inodes_count:
            raise ImageFormatError(f"inode number {ino} out of range")
        group, index = divmod(ino - 1, g.inodes_per_group)
        table = self._descriptor(group)
        raw = self._bytes(table * g.block_size + index * g.inode_size, g.inode_size)
        local: list[str] = []
        inode = _Inode(ino, raw, g, local)
        for message in local:
            self._warn(message)
        return inode

    def _runs(self, inode: _Inode) -> list[blockmap.Run]:
        g = self.geometry
        file_blocks = -(-inode.size // g.block_size)
        if file_blocks == 0:
            return []
        if inode.flags & EXTENTS_FL:
            return blockmap.extent_runs(inode.i_block, file_blocks, g.blocks_count, self._block)
        return blockmap.indirect_runs(inode.i_block, file_blocks, g.blocks_count, g.block_size, self._block)

    def _xattrs(self, inode: _Inode) -> dict[str, bytes]:
        where = f"inode {inode.ino}"
        local: list[str] = []
        result = xattrs.in_inode(inode.raw, inode.extra_end, local, where, self._ea_inode_value)
        if inode.file_acl:
            block = self._ea_cache.get(inode.file_acl)
            if block is None:
                try:
                    block = xattrs.in_block(self._block(inode.file_acl), local, where, self._ea_inode_value)
                except ImageFormatError as exc:
                    local.append(f"{where}: external xattr block: {exc}")
                    block = {}
                self._ea_cache[inode.file_acl] = block
            for name, value in block.items():
                result.setdefault(name, value)
        for message in local:
            self._warn(message)
        return result

    def _ea_inode_value(self, ino: int, size: int) -> bytes:
        inode = self._inode(ino)
        if not inode.flags & EA_INODE_FL:
            raise ImageFormatError(f"xattr value inode {ino} is not an EA inode")
        return b"".join(bytes(chunk) for chunk in self._chunks(inode, min(size, inode.size)))

    def _inline_area(self, inode: _Inode) -> bytes:
        """i_block followed by the whole ``system.data`` xattr: everything stored inline."""
        local: list[str] = []
        found = xattrs.in_inode(inode.raw, inode.extra_end, local, f"inode {inode.ino}")
        for message in local:
            self._warn(message)
        if "system.data" not in found:
            self._warn(f"inode {inode.ino}: inline data flag but no system.data attribute (corrupt)")
        return inode.i_block + found.get("system.data", b"")

    def _inline_data(self, inode: _Inode) -> bytes:
        """The inline content, cut to the file size."""
        data = self._inline_area(inode)
        if len(data) < inode.size:
            raise ImageFormatError(f"inode {inode.ino}: inline data shorter ({len(data)}) than the size {inode.size}")
        return data[: inode.size]

    def _chunks(self, inode: _Inode, limit: int | None = None) -> Iterator[bytes | memoryview]:
        size = inode.size if limit is None else min(limit, inode.size)
        if inode.flags & INLINE_DATA_FL:
            yield self._inline_data(inode)[:size]
            return
        bs = self.geometry.block_size
        position = 0
        for logical, physical, count, uninit in self._runs(inode):
            start = logical * bs
            if start >= size:
                break
            if start > position:
                yield from self._zeros(start - position)
                position = start
            length = min(count * bs, size - start)
            if uninit:
                yield from self._zeros(length, charge=False)
            else:
                base = physical * bs
                self._bytes(base, length)  # bounds check once for the whole run
                for offset in range(0, length, CHUNK):
                    yield self._view[base + offset : base + min(length, offset + CHUNK)]
            position = start + length
        if position < size:
            yield from self._zeros(size - position)

    def _zeros(self, length: int, charge: bool = True) -> Iterator[memoryview]:
        if charge:
            with self._lock:
                if length > self.hole_budget:
                    raise ImageFormatError(
                        f"sparse holes beyond the reader's budget ({self.hole_budget} bytes): hostile file size?"
                    )
                self.hole_budget -= length
        zeros = memoryview(_ZEROS)
        while length > 0:
            step = min(length, len(_ZEROS))
            yield zeros[:step]
            length -= step

    # -- directories -----------------------------------------------------------------------

    def _dir_blocks(self, inode: _Inode) -> Iterator[memoryview]:
        warned = False
        for _logical, physical, count, uninit in self._runs(inode):
            if uninit and not warned:
                # Directories are never preallocated, so this is corruption (e2fsck says so);
                # the kernel and debugfs still read the block's entries, and so do we.
                self._warn(f"directory inode {inode.ino}: block in an unwritten extent, read anyway (corrupt)")
                warned = True
            for n in range(count):
                yield self._block(physical + n)

    def _children(self, inode: _Inode, *, keep: bool = True) -> dict[bytes, int]:
        """Name -> inode of a directory; kept for later lookups unless ``keep`` is false."""
        cached = self._dir_cache.get(inode.ino)
        if cached is not None:
            return cached
        g = self.geometry
        where = f"directory inode {inode.ino}"
        out: list[dirents.Child] = []
        local: list[str] = []
        if inode.flags & INLINE_DATA_FL:
            # The first 4 bytes name the parent; entries follow, then continue in system.data.
            # Like the kernel, the whole inline area is read whatever i_size says.
            data = memoryview(self._inline_area(inode))
            if inode.size != len(data):
                local.append(f"{where}: size {inode.size} but {len(data)} bytes inline (corrupt), all read")
            dirents.parse_block(data[4:60], g.inodes_count, self._filetype, out, local, where)
            if len(data) > 60:
                dirents.parse_block(data[60:], g.inodes_count, self._filetype, out, local, where)
        else:
            if inode.size > MAX_DIR_BYTES:
                raise ImageFormatError(f"{where}: {inode.size} bytes, too big for a directory")
            for block in self._dir_blocks(inode):
                dirents.parse_block(block, g.inodes_count, self._filetype, out, local, where)
                if len(out) > MAX_DIR_ENTRIES:
                    local.append(f"{where}: more than {MAX_DIR_ENTRIES} entries, the rest skipped")
                    break
        for message in local:
            self._warn(message)
        children: dict[bytes, int] = {}
        for name, ino in out:
            if name in children:
                self._warn(f"{where}: duplicate name {name!r}, first one kept")
                continue
            children[name] = ino
        if keep and len(self._dir_cache) < 65536:
            self._dir_cache[inode.ino] = children
        return children

    # -- entries ---------------------------------------------------------------------------

    def _entry(self, inode: _Inode, path: str) -> Entry:
        kind = inode.mode & S_IFMT
        type_ = TYPES.get(kind)
        if type_ is None:
            raise ImageFormatError(f"inode {inode.ino} has no valid file type (mode 0o{inode.mode:o})")
        target = None
        rdev = None
        if kind == S_IFLNK:
            try:
                target = self._target(inode)
            except ImageFormatError as exc:
                # The kernel lists it (lstat works) and only readlink fails: list it, without a target.
                self._warn(f"{path}: symlink target unreadable: {exc}")
        elif kind in (S_IFCHR, S_IFBLK):
            old, new = struct.unpack_from("<II", inode.i_block)
            if old:
                rdev = ((old >> 8) & 0xFF, old & 0xFF)
            else:
                rdev = ((new & 0xFFF00) >> 8, (new & 0xFF) | ((new >> 12) & 0xFFF00))
        return Entry(
            path=path,
            inode=inode.ino,
            type=type_,
            mode=inode.mode & 0o7777,
            uid=inode.uid,
            gid=inode.gid,
            size=inode.size,
            allocated=inode.blocks,
            nlink=inode.links,
            mtime=inode.mtime,
            atime=inode.atime,
            ctime=inode.ctime,
            crtime=inode.crtime,
            target=target,
            xattrs=self._xattrs(inode),
            rdev=rdev,
            flags=inode.flags,
            inline=bool(inode.flags & INLINE_DATA_FL),
        )

    def _target(self, inode: _Inode) -> str:
        """A symlink's target, read the way the kernel reads it (``ext4_inode_is_fast_symlink``).

        Fast (in i_block) or slow (in a block) is decided by i_blocks, except on
        ea_inode filesystems, where an EA inode's blocks may be charged to the
        symlink, so the size decides. A fast target must be 1–59 bytes (the
        kernel refuses the inode otherwise); a slow one is cut at the block
        size − 1 whatever i_size claims, as the kernel does, with a warning,
        since such an image is corrupt.
        """
        g = self.geometry
        if inode.flags & INLINE_DATA_FL:
            raw = self._inline_data(inode)
        elif self._fast_symlink(inode):
            if not 0 < inode.size < len(inode.i_block):
                # The kernel refuses the inode (EFSCORRUPTED); debugfs reads it as a block map.
                raise ImageFormatError(f"invalid fast symlink length {inode.size}")
            raw = inode.i_block[: inode.size]
        else:
            limit = min(inode.size, g.block_size - 1)
            if inode.size > limit:
                self._warn(
                    f"symlink inode {inode.ino}: target of {inode.size} bytes, cut at {limit} as the kernel does"
                )
            raw = b"".join(bytes(chunk) for chunk in self._chunks(inode, limit))
        return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")

    def _fast_symlink(self, inode: _Inode) -> bool:
        g = self.geometry
        if g.incompat & INCOMPAT_EA_INODE:
            return 0 < inode.size < len(inode.i_block)
        ea_bytes = g.cluster_size if inode.file_acl else 0
        return inode.blocks - ea_bytes == 0

    def walk(self) -> Iterator[Entry]:
        """Every path once: "/" first, then depth-first with children sorted by name bytes.

        A directory reached a second time (a cycle or a hardlinked directory) is
        listed but not entered again; an unreadable inode is left out with a warning.
        """
        try:
            root_inode = self._inode(ROOT_INODE)
            root = self._entry(root_inode, "/")
        except ImageFormatError as exc:
            raise ImageFormatError(f"{self.path}: root directory unreadable: {exc}") from exc
        if root.type != "dir":
            raise ImageFormatError(f"{self.path}: root inode is a {root.type}, not a directory")
        yield root
        # Paths can outnumber inodes only through hardlinks; far more means shared directory blocks.
        budget = 4 * self.geometry.inodes_count + 1000
        seen = {ROOT_INODE}
        fast = self._plain_file_entry
        stack: list[Iterator[tuple[bytes, int]]] = [iter(self._sorted_children(root_inode, "/"))]
        prefixes = [""]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                prefixes.pop()
                continue
            name, ino = item
            path = prefixes[-1] + "/" + name.decode("utf-8", "surrogateescape")
            entry = fast(ino, path)
            if entry is None:
                try:
                    inode = self._inode(ino)
                    entry = self._entry(inode, path)
                except ImageFormatError as exc:
                    self._warn(f"{path}: skipped: {exc}")
                    continue
            yield entry
            budget -= 1
            if budget <= 0:
                self._warn(f"more than {4 * self.geometry.inodes_count + 1000} paths: walk stopped")
                return
            if entry.type != "dir":
                continue
            if ino in seen:
                self._warn(f"{path}: directory inode {ino} seen before (cycle or hardlinked directory), not entered")
                continue
            seen.add(ino)
            stack.append(iter(self._sorted_children(inode, path)))
            prefixes.append(path)

    def _plain_file_entry(self, ino: int, path: str) -> Entry | None:
        """The Entry of a plain regular file, decoded in one unpack; None for anything else.

        Most of an image's paths are regular files with the usual 256-byte record layout,
        no xattrs and nothing odd, and for them this gives exactly what ``_entry(_inode())``
        gives at a fraction of the cost (no ``_Inode``, no xattr parse). Whatever it does
        not take (other types, xattrs in the inode or in a block, another i_extra_isize,
        an unusable group or record) returns None and goes the general way, which checks
        and warns.
        """
        g = self.geometry
        if not 0 < ino <= g.inodes_count or g.inode_size < _WALK.size:
            return None
        group, index = divmod(ino - 1, g.inodes_per_group)
        table = self._itable.get(group)
        if table is None:
            try:
                table = self._descriptor(group)
            except ImageFormatError:
                return None
        offset = table * g.block_size + index * g.inode_size
        if offset + g.inode_size > self.image_bytes:
            return None  # a record cut by the end of the file: the general path refuses it
        (
            mode,
            uid_lo,
            size_lo,
            atime,
            ctime,
            mtime,
            gid_lo,
            links,
            blocks_lo,
            flags,
            acl_lo,
            size_hi,
            blocks_hi,
            acl_hi,
            uid_hi,
            gid_hi,
            extra,
            ctime_x,
            mtime_x,
            atime_x,
            crtime,
            crtime_x,
            ea_magic,
        ) = _WALK.unpack_from(self._view, offset)
        if mode & S_IFMT != S_IFREG or extra != _FAST_EXTRA or ea_magic == xattrs.EA_MAGIC or acl_lo or acl_hi:
            return None
        if g.huge_file:
            blocks = blocks_lo | (blocks_hi << 32)
            allocated = blocks * (g.block_size if flags & HUGE_FILE_FL else 512)
        else:
            allocated = blocks_lo * 512
        # _signed(v) + (extra bits << 32), without the calls: bit 31 set subtracts 2**32.
        return plain_file_entry(
            path,
            ino,
            mode & 0o7777,
            uid_lo | (uid_hi << 16),
            gid_lo | (gid_hi << 16),
            size_lo | (size_hi << 32),
            allocated,
            links,
            mtime - ((mtime & 0x80000000) << 1) + ((mtime_x & 3) << 32),
            atime - ((atime & 0x80000000) << 1) + ((atime_x & 3) << 32),
            ctime - ((ctime & 0x80000000) << 1) + ((ctime_x & 3) << 32),
            crtime - ((crtime & 0x80000000) << 1) + ((crtime_x & 3) << 32),
            flags,
            bool(flags & INLINE_DATA_FL),
        )

    def _sorted_children(self, inode: _Inode, path: str) -> list[tuple[bytes, int]]:
        try:
            # The walk reads each directory once: keeping them all for lookups would hold
            # every name of the image (~100 bytes a file at 100k files, issue 16).
            return sorted(self._children(inode, keep=False).items())
        except ImageFormatError as exc:
            self._warn(f"{path}: directory unreadable: {exc}")
            return []

    # -- lookups ---------------------------------------------------------------------------

    def lookup(self, path: str, follow: bool = False) -> Entry | None:
        """The entry at ``path`` (absolute inside the image), or None.

        Symlinks in the middle of the path are resolved inside the image (an
        absolute target starts again at the image root, never the host's);
        the last component only with ``follow``. The entry's ``path`` is the
        resolved one. More than 40 symlinks, or a corrupt step, gives None.
        """
        try:
            return self._lookup(path, follow)
        except ImageFormatError as exc:
            self._warn(f"lookup {path!r}: {exc}")
            return None

    def _lookup(self, path: str, follow: bool) -> Entry | None:
        todo = _components(path)
        names: list[bytes] = []
        dirs = [ROOT_INODE]
        hops = 0
        current = self._inode(ROOT_INODE)
        while todo:
            part = todo.pop()
            if part == b"..":
                if names:
                    names.pop()
                    dirs.pop()
                current = self._inode(dirs[-1])
                continue
            if current.mode & S_IFMT != S_IFDIR:
                return None
            ino = self._children(current).get(part)
            if ino is None:
                return None
            child = self._inode(ino)
            if child.mode & S_IFMT == S_IFLNK and (todo or follow):
                hops += 1
                if hops > MAX_HOPS:
                    self._warn(f"lookup {path!r}: more than {MAX_HOPS} symlinks")
                    return None
                target = self._target(child).encode("utf-8", "surrogateescape")
                if target.startswith(b"/"):
                    names.clear()
                    del dirs[1:]
                current = self._inode(dirs[-1])
                todo.extend(_components(target.decode("utf-8", "surrogateescape")))
                continue
            names.append(part)
            dirs.append(ino)
            current = child
        resolved = "/" + "/".join(name.decode("utf-8", "surrogateescape") for name in names)
        return self._entry(current, resolved)

    # -- content ---------------------------------------------------------------------------

    def _file_inode(self, entry: Entry) -> _Inode:
        inode = self._inode(entry.inode)
        if inode.mode & S_IFMT != S_IFREG:
            raise InputError(f"{entry.path} is not a regular file")
        return inode

    def iter_chunks(self, entry: Entry) -> Iterator[bytes | memoryview]:
        """The content of a regular file as a stream of chunks (holes as zeros)."""
        return self._chunks(self._file_inode(entry))

    def data_blocks(self, entry: Entry) -> list[tuple[int, int]]:
        """Where a regular file's content lies: (first block, count) of each run, in logical
        order; inline data and holes take none (an extent tree's own blocks are not listed)."""
        inode = self._file_inode(entry)
        if inode.flags & INLINE_DATA_FL:
            return []
        return [(physical, count) for _logical, physical, count, _uninit in self._runs(inode)]

    def read_bytes(self, entry: Entry, limit: int | None = None) -> bytes:
        """The content of a regular file, or its first ``limit`` bytes."""
        inode = self._file_inode(entry)
        return b"".join(self._chunks(inode, limit))

    def read_path(self, path: str, limit: int | None = None) -> bytes | None:
        """Content of the regular file at ``path`` (symlinks followed inside the image), else None."""
        entry = self.lookup(path, follow=True)
        if entry is None or entry.type != "file":
            return None
        return self.read_bytes(entry, limit)

    def sha256_files(self, entries: Iterable[Entry], workers: int = 2) -> dict[int, str]:
        """inode -> hex sha256 of the regular files among ``entries``, each inode hashed once.

        A file whose content cannot be read is left out, with a warning.
        """
        files = [entry for entry in entries if entry.type == "file"]
        names: dict[int, str] = {}

        def name(ino: int) -> str | None:
            # Only a warning needs a path: the map is built then (a million files, rarely).
            with self._lock:
                if not names:
                    for entry in files:
                        names.setdefault(entry.inode, entry.path)
            return names.get(ino)

        return self.sha256_inodes({entry.inode for entry in files}, workers=workers, name=name)

    def sha256_inodes(
        self, inodes: Iterable[int], workers: int = 2, name: Callable[[int], str | None] | None = None
    ) -> dict[int, str]:
        """inode -> hex sha256 of each regular file in ``inodes`` (sorted by inode).

        Built for a million small files: ``_hash_plan`` reads every inode's record at once
        (numpy over the mapping) and finds where each file's content lies when it is one run
        of blocks (most are); the files are cut into batches of a few MiB of data, each worker
        thread takes whole batches and hashes those files straight from memoryview slices of
        the mapping (hashlib releases the GIL), with almost no Python per file. Anything else
        (holes, unwritten or inline data, several extents, deep extent trees, block maps,
        anything odd) takes the general path, so the answer is the same. ``name(ino)`` names
        a file in warnings.
        """
        import numpy as np

        numbers = sorted(set(inodes))
        sizes, starts, ends = self._hash_plan(numbers)
        # Big files alone and first, biggest first, so the workers finish together; then the
        # rest in inode order (disk order, for a cold page cache), cut where the running total
        # of data (a file counts _FILE_COST more) crosses a multiple of _BATCH_BYTES.
        big = np.flatnonzero(sizes >= _BIG_FILE)
        big = big[np.argsort(-sizes[big], kind="stable")]
        small = np.flatnonzero(sizes < _BIG_FILE)
        cost = sizes[small] + _FILE_COST
        window = (np.cumsum(cost) - cost) // _BATCH_BYTES
        cuts = np.flatnonzero(np.diff(window)) + 1
        groups = [big[i : i + 1] for i in range(big.size)] + ([*np.split(small, cuts)] if small.size else [])
        batches = [(rows.tolist(), starts[rows].tolist(), ends[rows].tolist()) for rows in groups]
        digests: list[str | None] = [None] * len(numbers)
        label = name or (lambda ino: None)

        def work(batch: tuple[list[int], list[int], list[int]]) -> None:
            self._hash_batch(*batch, numbers, digests, label)

        if workers <= 1 or len(batches) < 2:
            for batch in batches:
                work(batch)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nexlab-sha256") as pool:
                for _ in pool.map(work, batches):
                    pass
        return {ino: digest for ino, digest in zip(numbers, digests, strict=True) if digest is not None}

    def _record_offset(self, ino: int) -> int | None:
        """Where inode ``ino``'s record starts in the image; None when it is out of range or its
        group's inode table is unusable (the hashing fast path then leaves it to the general one)."""
        g = self.geometry
        if not 0 < ino <= g.inodes_count:
            return None
        group, index = divmod(ino - 1, g.inodes_per_group)
        try:
            table = self._descriptor(group)
        except ImageFormatError:
            return None
        return table * g.block_size + index * g.inode_size

    def _hash_plan(
        self, inodes: list[int]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Three arrays, one row per (sorted) inode: its size (only to cut batches, capped at
        2**62; 0 when its record is unusable) and the start and end of its content in the image
        when that is one plain run of blocks, else start -1 (the general path, which checks and
        warns).

        The common case, an extent-mapped regular file whose in-inode leaf holds one
        initialised extent from logical block 0 covering the file, is decided for all inodes
        at once from nine words of each record gathered with numpy; the same checks as
        ``_one_run`` (and ``blockmap.extent_runs``), overflow-safe. Any other record that
        could still be one run (several in-inode extents) goes through ``_one_run``.
        """
        import numpy as np

        g = self.geometry
        count = len(inodes)
        sizes = np.zeros(count, dtype=np.int64)
        starts = np.full(count, -1, dtype=np.int64)
        ends = np.zeros(count, dtype=np.int64)
        if count == 0:
            return sizes, starts, ends
        try:
            ino = np.array(inodes, dtype=np.int64)
        except OverflowError:  # numbers no inode has: left to the general path, which says so
            ino = np.array([i if 0 < i <= g.inodes_count else 0 for i in inodes], dtype=np.int64)
        inside = (ino > 0) & (ino <= g.inodes_count)
        group = np.where(inside, (ino - 1) // g.inodes_per_group, 0)
        index = np.where(inside, (ino - 1) % g.inodes_per_group, 0)
        # One descriptor lookup per group met (a hostile geometry may have billions of groups).
        groups, which = np.unique(group, return_inverse=True)
        tables: list[int] = []
        for number in groups.tolist():
            try:
                block = self._descriptor(number)
            except ImageFormatError:
                block = -1
            # A table past the end of the file (a hostile 64-bit block number) would overflow
            # the arithmetic below: its inodes go the general way, which refuses them.
            tables.append(block if block * g.block_size < self.image_bytes else -1)
        table = np.array(tables, dtype=np.int64)[which]
        offset = table * g.block_size + index * g.inode_size
        # Record offsets are multiples of 4 (block and inode sizes are): the image as 32-bit words.
        usable = inside & (table >= 0) & (offset + 128 <= self.image_bytes)
        rows = np.flatnonzero(usable)
        if rows.size == 0:
            return sizes, starts, ends
        words = np.frombuffer(self._view, dtype="<u4", count=self.image_bytes // 4)
        try:
            w = offset[rows] // 4
            mode = (words[w] & 0xFFFF).astype(np.int64)
            size_lo = words[w + 1].astype(np.uint64)
            flags = words[w + 8].astype(np.int64)
            header = words[w + 10].astype(np.int64)  # eh_magic, eh_entries
            header2 = words[w + 11].astype(np.int64)  # eh_max, eh_depth
            logical = words[w + 13].astype(np.int64)  # the first extent: ee_block
            extent = words[w + 14].astype(np.int64)  # ee_len, ee_start_hi
            start_lo = words[w + 15].astype(np.int64)
            size_hi = words[w + 27].astype(np.uint64)
        finally:
            del words  # the mapping may not be closed while an array still views it
        regular = (mode & S_IFMT) == S_IFREG
        size = np.where(regular, size_lo | (size_hi << np.uint64(32)), size_lo)
        entries = header >> 16
        extents = (
            regular
            & ((flags & (INLINE_DATA_FL | EXTENTS_FL)) == EXTENTS_FL)
            & ((header & 0xFFFF) == blockmap.EXTENT_MAGIC)
            & ((header2 >> 16) == 0)
            & (entries >= 1)
            & (entries <= (header2 & 0xFFFF))
            & (entries <= 4)
        )
        bs = g.block_size
        # Content inside the image file: this bounds every product below (no overflow).
        fits = size <= np.uint64(self.image_bytes)
        small_size = np.where(fits, size, np.uint64(0)).astype(np.int64)
        file_blocks = -(-small_size // bs)
        length = extent & 0xFFFF
        physical = start_lo | ((extent >> 16) << 32)
        in_image = physical <= self.image_bytes // bs
        begin = np.where(in_image, physical, 0) * bs
        one = (
            extents
            & fits
            & (entries == 1)
            & (logical == 0)
            & (length >= 1)
            & (length <= _UNINIT_LEN)
            & (length >= file_blocks)
            & (physical != 0)
            & in_image
            # Both terms are below image_bytes / bs here, so the cap changes no answer.
            & (physical + file_blocks <= min(g.blocks_count, 1 << 62))
            & (begin + small_size <= self.image_bytes)
        )
        empty = extents & (size == 0)
        other = regular & ~one & ~empty & extents
        sizes[rows] = np.minimum(size, np.uint64(1 << 62)).astype(np.int64)
        starts[rows[one]] = begin[one]
        ends[rows[one]] = begin[one] + small_size[one]
        starts[rows[empty]] = 0
        for row in rows[other].tolist():
            run = self._one_run(inodes[row])
            if run is not None:
                starts[row], ends[row] = run
        return sizes, starts, ends

    def _hash_batch(
        self,
        rows: list[int],
        starts: list[int],
        ends: list[int],
        numbers: list[int],
        digests: list[str | None],
        name: Callable[[int], str | None],
    ) -> None:
        """Hash the files at ``rows`` of ``numbers`` into the same rows of ``digests``."""
        view = self._view
        sha256 = hashlib.sha256
        for row, start, end in zip(rows, starts, ends, strict=True):
            if start >= 0:
                digests[row] = sha256(view[start:end]).hexdigest()
            else:
                digests[row] = self._sha256_general(numbers[row], name)

    def _one_run(self, ino: int) -> tuple[int, int] | None:
        """(start, end) in the image of a regular file's content when it is one plain run of
        blocks (an extent-mapped inode whose in-inode leaf maps it contiguously from block 0,
        initialised, inside the filesystem); None sends the file down the general path."""
        g = self.geometry
        offset = self._record_offset(ino)
        if offset is None or offset + 128 > self.image_bytes:
            return None
        mode, size_lo, flags, magic, entries, max_entries, depth, size_hi = _FAST.unpack_from(self._view, offset)
        if mode & S_IFMT != S_IFREG or flags & (INLINE_DATA_FL | EXTENTS_FL) != EXTENTS_FL:
            return None
        if magic != blockmap.EXTENT_MAGIC or depth != 0 or not 0 < entries <= max_entries or entries > 4:
            return None
        size = size_lo | (size_hi << 32)
        if size == 0:
            return (0, 0)
        bs = g.block_size
        file_blocks = -(-size // bs)
        # The same checks as blockmap.extent_runs, so a leaf it refuses goes the general way too.
        start = -1
        next_logical = 0
        covered = 0  # blocks mapped contiguously from logical 0
        for i in range(entries):
            logical, length, start_hi, start_lo = _LEAF.unpack_from(self._view, offset + 52 + 12 * i)
            uninit = length > _UNINIT_LEN
            if uninit:
                length -= _UNINIT_LEN
            if length == 0:
                continue
            if logical < next_logical:
                return None
            next_logical = logical + length
            if logical >= file_blocks:
                continue  # preallocated past the end: not content
            if uninit or logical != covered:
                return None
            length = min(length, file_blocks - logical)
            physical = start_lo | (start_hi << 32)
            if physical == 0 or physical + length > g.blocks_count:
                return None
            if start < 0:
                start = physical - logical
            elif physical != start + logical:
                return None
            covered = logical + length
        if covered < file_blocks:
            return None
        begin = start * bs
        end = begin + size
        if end > self.image_bytes:
            return None
        return (begin, end)

    def _sha256_general(self, ino: int, name: Callable[[int], str | None]) -> str | None:
        digest = hashlib.sha256()
        try:
            inode = self._inode(ino)
            if inode.mode & S_IFMT != S_IFREG:
                raise InputError(f"{name(ino) or f'inode {ino}'} is not a regular file")
            for chunk in self._chunks(inode):
                digest.update(chunk)
        except (ImageFormatError, InputError) as exc:
            self._warn(f"{name(ino) or f'inode {ino}'}: content unreadable: {exc}")
            return None
        return digest.hexdigest()


def _components(path: str) -> list[bytes]:
    """Path components, reversed (a stack), without empty and "." parts."""
    parts = [p for p in path.encode("utf-8", "surrogateescape").split(b"/") if p and p != b"."]
    parts.reverse()
    return parts


def open_image(path: str | os.PathLike[str], *, hole_budget: int | None = None) -> Ext4Image:
    """Open an ext2/3/4 image for reading; ``ImageFormatError`` if it is not one.

    ``hole_budget`` caps the zero bytes handed out for sparse holes over the
    life of the image (default: the larger of 4 GiB and 4× the filesystem).
    """
    return Ext4Image(path, hole_budget=hole_budget)
