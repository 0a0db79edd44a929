"""Extract the setup container's exported filesystem into the new root, counting what it holds.

The engine's ``export`` is a tar of the container's whole root. libarchive reads
it as it streams and writes only what a Firecracker root keeps (``KEPT``, the
seed's list, minus caches, package lists, logs and ``/var/tmp``), with its
secure flags: no ``..``, no absolute names, nothing written through a symlink
already extracted. Owners, modes, times, hard links and ``security.capability``
(the one xattr the engine exports) are kept; runs of zeros become holes again
(the engine writes sparse files out in full).

While it writes, it counts what the ext4 image will hold: 4 KiB data blocks that
are not holes, extent-tree blocks, directory blocks, long symlinks, xattr
blocks, and inodes. When the target fills up (no space or no inodes), the rest
of the stream is still read and counted, so ``ContentTooLargeError`` carries the
exact total and the size advised from it builds the first time.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import io
import os
import stat
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nexlab.builder.container import ContentTooLargeError
from nexlab.builder.rootless import Owner
from nexlab.errors import InputError

#: Top-level names the image keeps (the seed copies these; ``lib32``/``libx32`` are
#: merged-/usr symlinks on multilib bases and dangle if dropped).
KEPT = frozenset(("bin", "etc", "home", "lib", "lib32", "lib64", "libx32", "root", "sbin", "usr", "var"))
#: Directories kept empty: rebuilt at run time, they only cost space.
EMPTIED = ("var/cache/apt", "var/cache/apk", "var/lib/apt/lists", "var/tmp")
#: Under /var/log the directories stay (daemons expect them), the logs go.
LOGS = "var/log"
#: The engine bind-mounts these into every container; the guest gets its own (``finish_archive``).
INJECTED = frozenset(("etc/hostname", "etc/hosts", "etc/resolv.conf"))
#: Made empty by ``finish_archive``: the kernel or init mounts them.
MADE = ("dev", "proc", "run", "sys", "tmp")

BLOCK = 4096
_ZEROS = bytes(4 * 2**20)
_ZERO_BLOCK = bytes(BLOCK)
#: ext4: four extents in the inode, 340 per tree block, at most 32768 blocks each.
_INLINE_EXTENTS = 4
_EXTENTS_PER_BLOCK = 340
_EXTENT_BLOCKS = 32768
#: A 256-byte inode has ~100 bytes for in-inode xattrs; more go to a block.
_INLINE_XATTR_BYTES = 96
#: Symlink targets shorter than this live in the inode.
_FAST_SYMLINK = 60

FLAGS_SECURE = 0x0100 | 0x0200 | 0x10000  # SECURE_SYMLINKS | SECURE_NODOTDOT | SECURE_NOABSOLUTEPATHS
#: PERM | TIME | SPARSE, and what only root may set: OWNER | ACL | FFLAGS | XATTR.
FLAGS_USER = FLAGS_SECURE | 0x0002 | 0x0004 | 0x1000
FLAGS_ROOT = FLAGS_USER | 0x0001 | 0x0020 | 0x0040 | 0x0080

_ARCHIVE_OK = 0
_ARCHIVE_EOF = 1
_ARCHIVE_WARN = -20
_FULL = (errno.ENOSPC, errno.EDQUOT)
_PIPE_BYTES = 4 * 2**20
#: Seconds between two reports of the bytes copied (the bar needs no more).
REPORT = 0.1

# libarchive's write_disk resolves names against the working directory: one extraction at a time.
_CWD_LOCK = threading.Lock()


@dataclass
class Content:
    """What the image will hold, counted as ext4 lays it out."""

    blocks: int = 0
    inodes: int = 0
    entries: int = 0
    #: Directory -> bytes of its entries (8 + name rounded up to 4, per entry).
    directories: dict[str, int] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return (self.blocks + self.directory_blocks()) * BLOCK

    def directory_blocks(self) -> int:
        total = 0
        for path, used in self.directories.items():
            if used + 24 <= BLOCK - 12:
                blocks = 1
            else:  # an htree: its root block, and leaves split half full at worst
                blocks = 1 + -(-(used + 24) // ((BLOCK - 12) // 2))
            total += blocks - 1 if path == "" else blocks  # the root's first block exists already
        return total

    def add_name(self, path: str) -> None:
        parent, _, name = path.rpartition("/")
        size = len(name.encode("utf-8", "surrogateescape"))  # the name's bytes, whatever they are
        self.directories[parent] = self.directories.get(parent, 0) + 8 + -(-size // 4) * 4


@dataclass
class _Blocks:
    """Data blocks of one file as ext4 allocates them: holes where 4 KiB are all zero."""

    allocated: int = 0
    extents: int = 0
    last: int = -2
    run_start: int = -1

    def feed(self, data: bytes, offset: int) -> None:
        end = offset + len(data)
        if len(data) <= len(_ZEROS) and data == _ZEROS[: len(data)]:
            return
        first, last = offset // BLOCK, (end - 1) // BLOCK
        for block in range(first, last + 1):
            low, high = max(block * BLOCK, offset) - offset, min((block + 1) * BLOCK, end) - offset
            piece = data[low:high]
            if block == self.last or piece == (_ZERO_BLOCK if len(piece) == BLOCK else bytes(len(piece))):
                continue
            self._run(block, block)

    def _run(self, first: int, last: int) -> None:
        """Blocks ``first`` to ``last`` hold data."""
        self.allocated += last - first + 1
        if first != self.last + 1:
            self.extents += 1
            self.run_start = first
        # An extent holds at most 32768 blocks.
        while last - self.run_start >= _EXTENT_BLOCKS:
            self.run_start += _EXTENT_BLOCKS
            self.extents += 1
        self.last = last

    def metadata_blocks(self) -> int:
        if self.extents <= _INLINE_EXTENTS:
            return 0
        leaves = -(-self.extents // _EXTENTS_PER_BLOCK)
        return leaves + (1 if leaves > _INLINE_EXTENTS else 0)


@dataclass(frozen=True)
class Extracted:
    content: Content
    #: Path ("/etc/shadow") -> what a normal user could not keep; None when extracted as root.
    owners: dict[str, Owner] | None
    seconds: float


def kept(path: str, is_dir: bool) -> bool:
    """Whether the image holds ``path`` (relative, as in the export)."""
    top = path.split("/", 1)[0]
    if top not in KEPT or path in INJECTED:
        return False
    for emptied in EMPTIED:
        if path.startswith(emptied + "/"):
            return False
    return is_dir or not path.startswith(LOGS + "/")


class _Pump:
    """Feeds the export's chunks to libarchive through a pipe, from a thread.

    libarchive then reads a file descriptor in C: no Python runs inside its read
    callback, where a Ctrl-C (KeyboardInterrupt) would be swallowed by ctypes and
    libarchive handed a garbage length.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.read_fd, self._write_fd = os.pipe()
        # A 64 KiB pipe makes the engine's stream and the extraction take turns; a few
        # MiB of slack lets them overlap (the extraction waited on the pipe 2 s of 3).
        for size in (_PIPE_BYTES, 2**20):  # a normal user may not exceed /proc/sys/fs/pipe-max-size
            with contextlib.suppress(OSError):
                fcntl.fcntl(self._write_fd, fcntl.F_SETPIPE_SZ, size)
                break
        self._chunks = chunks
        self.failure: BaseException | None = None
        #: After a failure here (not Ctrl-C) the rest of the export is read and dropped:
        #: an engine left with a half-read export keeps the container busy for 30 s.
        self.drain = False
        self._thread = threading.Thread(target=self._run, name="nexlab-export", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        chunks = iter(self._chunks)
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(self._write_fd, view) :]
        except BrokenPipeError:
            if self.drain:
                for _ in chunks:
                    pass
        except BaseException as exc:
            self.failure = exc
        finally:
            os.close(self._write_fd)

    def close(self, *, drain: bool) -> None:
        self.drain = drain
        os.close(self.read_fd)
        self._thread.join(timeout=120 if drain else 5)


_P = ctypes.c_void_p
_SIGNATURES: dict[str, tuple[list[type], type | None]] = {
    "archive_errno": ([_P], ctypes.c_int),
    "archive_error_string": ([_P], ctypes.c_char_p),
    "archive_entry_pathname": ([_P], ctypes.c_char_p),
    "archive_entry_hardlink": ([_P], ctypes.c_char_p),
    "archive_entry_symlink": ([_P], ctypes.c_char_p),
    "archive_entry_mode": ([_P], ctypes.c_int),
    "archive_entry_set_perm": ([_P, ctypes.c_int], None),
    "archive_entry_uid": ([_P], ctypes.c_longlong),
    "archive_entry_gid": ([_P], ctypes.c_longlong),
    "archive_entry_xattr_count": ([_P], ctypes.c_int),
    "archive_entry_xattr_reset": ([_P], ctypes.c_int),
    "archive_entry_xattr_next": (
        [_P, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(_P), ctypes.POINTER(ctypes.c_size_t)],
        ctypes.c_int,
    ),
    "archive_entry_new": ([], _P),
    "archive_entry_free": ([_P], None),
    "archive_entry_size": ([_P], ctypes.c_longlong),
    "archive_read_next_header2": ([_P, _P], ctypes.c_int),
    "archive_read_extract2": ([_P, _P, _P], ctypes.c_int),
    "archive_read_data_block": (
        [_P, ctypes.POINTER(_P), ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_longlong)],
        ctypes.c_int,
    ),
    "archive_write_disk_new": ([], _P),
    "archive_write_disk_set_options": ([_P, ctypes.c_int], ctypes.c_int),
    "archive_write_header": ([_P, _P], ctypes.c_int),
    "archive_write_data_block": ([_P, _P, ctypes.c_size_t, ctypes.c_longlong], ctypes.c_ssize_t),
    "archive_write_finish_entry": ([_P], ctypes.c_int),
    "archive_write_close": ([_P], ctypes.c_int),
    "archive_write_free": ([_P], ctypes.c_int),
}


class _Lib:
    """libarchive's functions, typed here and without libarchive-c's error checks: a write
    that fails for lack of space must be counted, not raised, and ``lib[name]`` gives
    function objects of our own (attribute access would change libarchive-c's)."""

    def __init__(self) -> None:
        import libarchive.ffi as ffi

        for name, (argtypes, restype) in _SIGNATURES.items():
            function = ffi.libarchive[name]
            function.argtypes, function.restype = argtypes, restype
            setattr(self, name.removeprefix("archive_"), function)

    def __getattr__(self, name: str) -> Any:  # for mypy: the attributes are set above
        raise AttributeError(name)


_LIB: _Lib | None = None


def _lib() -> _Lib:
    global _LIB
    if _LIB is None:
        _LIB = _Lib()
    return _LIB


def _xattrs(lib: _Lib, entry: ctypes.c_void_p) -> tuple[tuple[str, bytes], ...]:
    # Asked for every entry, and nearly none has any: one call instead of a reset and a next.
    if not lib.entry_xattr_count(entry):
        return ()
    found: list[tuple[str, bytes]] = []
    name, value, size = ctypes.c_char_p(), ctypes.c_void_p(), ctypes.c_size_t()
    lib.entry_xattr_reset(entry)
    while lib.entry_xattr_next(entry, ctypes.byref(name), ctypes.byref(value), ctypes.byref(size)) == 0:
        data = ctypes.string_at(value, size.value) if value.value else b""
        found.append(((name.value or b"").decode("utf-8", "surrogateescape"), data))
    return tuple(sorted(found))


class _Extractor:
    """One write_disk session into the working directory, counting as it goes."""

    def __init__(
        self, write_p: ctypes.c_void_p, *, as_root: bool, on_bytes: Callable[[int], None] | None = None
    ) -> None:
        self.lib = _lib()
        self.write_p = write_p
        self.as_root = as_root
        self.content = Content()
        self.owners: dict[str, Owner] | None = None if as_root else {}
        #: Set once the target is full: from then on entries are only counted.
        self.full = False
        self.seen: set[str] = set()
        #: Bytes of regular files copied so far, told to ``on_bytes`` at most every REPORT seconds.
        self.on_bytes = on_bytes
        self.copied = 0
        self._files = 0
        self._told = 0.0

    def _tell(self, size: int) -> None:
        self.copied += size
        self._files += 1
        if self._files % 16:
            return  # the clock is read every 16 files: the loop runs per entry
        now = time.monotonic()
        if now - self._told >= REPORT and self.on_bytes is not None:
            self._told = now
            self.on_bytes(self.copied)

    def _check(self, code: int, path: str, archive: ctypes.c_void_p | None = None) -> None:
        """Note a full target, raise on anything else; ``archive`` holds the error
        (read_extract2 copies the writer's error to the reader)."""
        if code >= _ARCHIVE_OK:
            return
        holder = archive or self.write_p
        if self.lib.errno(holder) in _FULL:
            self.full = True
            return
        message = (self.lib.error_string(holder) or b"").decode("utf-8", "replace")
        raise InputError(f"cannot extract /{path} from the base image: {message}")

    def entries(self, read_p: ctypes.c_void_p, *, select: bool) -> None:
        """Every entry of the archive ``read_p``: kept ones extracted (or, once full, counted)."""
        lib = self.lib
        entry_p = lib.entry_new()
        try:
            while True:
                code = lib.read_next_header2(read_p, entry_p)
                if code == _ARCHIVE_EOF:
                    return
                if code < _ARCHIVE_WARN:
                    message = (lib.error_string(read_p) or b"").decode("utf-8", "replace")
                    raise InputError(f"cannot read the exported filesystem: {message}")
                self._entry(read_p, entry_p, select=select)
        finally:
            lib.entry_free(entry_p)

    def _entry(self, read_p: ctypes.c_void_p, entry_p: ctypes.c_void_p, *, select: bool) -> None:
        lib = self.lib
        raw = lib.entry_pathname(entry_p) or b""
        path = raw.decode("utf-8", "surrogateescape").removeprefix("./").rstrip("/")
        mode = lib.entry_mode(entry_p)
        hardlink = lib.entry_hardlink(entry_p)
        if not path or (select and not kept(path, stat.S_ISDIR(mode))):
            return  # libarchive skips its data at the next header
        self.seen.add(path)
        self._count_header(entry_p, path, mode, hardlink)
        if self.owners is not None and not hardlink:
            self._record_owner(entry_p, path, mode)
        on_disk = stat.S_ISREG(mode) and not hardlink
        if not self.full:
            # Header, data and attributes in one call, all in C: this loop runs per entry.
            self._check(lib.read_extract2(read_p, entry_p, self.write_p), path, read_p)
            if on_disk and self.on_bytes is not None:
                self._tell(lib.entry_size(entry_p))
            if not self.full:
                # A file's blocks are what the filesystem allocated for it, holes and
                # extent blocks as they are (cheaper than scanning its data).
                self.content.blocks += self._allocated(path) if on_disk else 0
                return
            # Out of room in this very file: count all of it as data.
            self.content.blocks += -(-lib.entry_size(entry_p) // BLOCK) if on_disk else 0
            return
        # Full: nothing is written any more, the data is scanned for what it would take.
        blocks = _Blocks()
        buff, size, offset = ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_longlong()
        while True:
            code = lib.read_data_block(read_p, ctypes.byref(buff), ctypes.byref(size), ctypes.byref(offset))
            if code == _ARCHIVE_EOF:
                break
            if code < _ARCHIVE_WARN:
                raise InputError(f"the exported filesystem is damaged at /{path}")
            if size.value:
                blocks.feed(ctypes.string_at(buff, size.value), offset.value)
        self.content.blocks += blocks.allocated + blocks.metadata_blocks()

    @staticmethod
    def _allocated(path: str) -> int:
        """4 KiB blocks the filesystem gave ``path`` (extent blocks included), just extracted
        by libarchive, which refused any name through a symlink."""
        try:
            return -(-os.lstat(path).st_blocks // (BLOCK // 512))
        except OSError:
            return 0

    def _count_header(self, entry_p: ctypes.c_void_p, path: str, mode: int, hardlink: bytes | None) -> None:
        content = self.content
        content.entries += 1
        content.add_name(path)
        if hardlink:
            target = hardlink.decode("utf-8", "surrogateescape").removeprefix("./")
            if target not in self.seen:
                raise InputError(
                    f"/{path} is a hard link to /{target}, which the image does not keep",
                    hint="make it a copy or a symlink in the base image",
                )
            return
        content.inodes += 1
        if stat.S_ISDIR(mode):
            content.directories.setdefault(path, 0)
        elif stat.S_ISLNK(mode):
            link: bytes = self.lib.entry_symlink(entry_p) or b""
            content.blocks += int(len(link) >= _FAST_SYMLINK)
        xattrs = _xattrs(self.lib, entry_p)
        if sum(16 + -(-len(name) // 4) * 4 + -(-len(value) // 4) * 4 for name, value in xattrs) > _INLINE_XATTR_BYTES:
            content.blocks += 1

    def _record_owner(self, entry_p: ctypes.c_void_p, path: str, mode: int) -> None:
        """A normal user keeps neither owners nor setuid bits nor security xattrs: note them for
        debugfs, and make the file ours to read and write (mkfs.ext4 -d and the scrub need that)."""
        assert self.owners is not None
        lib = self.lib
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            raise InputError(
                f"/{path} is a device node, which only root can create", hint="run the reproducible build as root"
            )
        uid, gid = lib.entry_uid(entry_p), lib.entry_gid(entry_p)
        # A symlink's permissions are 0777 on Linux whatever the archive says.
        perm = 0o777 if stat.S_ISLNK(mode) else mode & 0o7777
        self.owners["/" + path] = Owner(uid, gid, perm, _xattrs(lib, entry_p))
        if not stat.S_ISLNK(mode):
            lib.entry_set_perm(entry_p, (mode & 0o755) | (0o700 if stat.S_ISDIR(mode) else 0o600))


@contextlib.contextmanager
def _inside(target: Path) -> Iterator[None]:
    with _CWD_LOCK:
        saved = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.chdir(target)
            yield
        finally:
            os.fchdir(saved)
            os.close(saved)


@contextlib.contextmanager
def _write_disk(lib: _Lib, flags: int) -> Iterator[ctypes.c_void_p]:
    # No archive_write_disk_set_standard_lookup: owners are the image's numbers, never
    # names mapped through this host's /etc/passwd.
    write_p = lib.write_disk_new()
    if not write_p:
        raise MemoryError("archive_write_disk_new")
    try:
        lib.write_disk_set_options(write_p, flags)
        yield write_p
    finally:
        lib.write_free(write_p)


@runtime_checkable
class Descriptor(Protocol):
    """A tar stream on a file descriptor (``nexlab.run.Streaming``): libarchive reads it
    in C, and ``finish()`` raises when its writer failed, even after a well-formed end."""

    fd: int

    def finish(self) -> None: ...


def extract(
    source: Iterable[bytes] | Descriptor,
    target: Path,
    *,
    as_root: bool | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Extracted:
    """Extract the kept part of an exported filesystem, then ``finish_archive``, into ``target``.

    ``on_bytes(copied)`` is told the bytes of regular files written so far, a few times a second.

    ``source`` is the tar as chunks (the engine's export) or on a file descriptor.
    Raises ``ContentTooLargeError`` (with the whole content counted) when
    ``target`` runs out of space or inodes.
    """
    import libarchive

    start = time.monotonic()
    root = os.geteuid() == 0 if as_root is None else as_root
    lib = _lib()
    with _inside(target), _write_disk(lib, FLAGS_ROOT if root else FLAGS_USER) as write_p:
        extractor = _Extractor(write_p, as_root=root, on_bytes=on_bytes)
        _read_export(extractor, source)
        finish = finish_archive(has_var="var" in extractor.seen, mtime=int(time.time()))
        with libarchive.memory_reader(finish) as archive:
            extractor.entries(archive._pointer, select=False)
        if not extractor.full:
            # Directory modes and times are set here, deepest first.
            extractor._check(lib.write_close(write_p), ".")
    if extractor.full:
        raise ContentTooLargeError(content_bytes=extractor.content.bytes, content_files=extractor.content.inodes)
    return Extracted(content=extractor.content, owners=extractor.owners, seconds=time.monotonic() - start)


def count(source: Iterable[bytes] | Descriptor) -> Content:
    """What ``extract`` would put in the image, counted without writing anything.

    ``--size auto`` on the mount path sizes the image before it exists: the stream is
    read once here (every entry scanned as ``extract`` scans what no longer fits) and
    once more into the mounted image.
    """
    import libarchive

    lib = _lib()
    with _write_disk(lib, FLAGS_ROOT) as write_p:
        extractor = _Extractor(write_p, as_root=True)
        extractor.full = True  # nothing is written: every entry is only counted
        _read_export(extractor, source)
        with libarchive.memory_reader(finish_archive(has_var="var" in extractor.seen, mtime=0)) as archive:
            extractor.entries(archive._pointer, select=False)
    return extractor.content


def _read_export(extractor: _Extractor, source: Iterable[bytes] | Descriptor) -> None:
    """Feed the exported tar (chunks through a pump, or a descriptor) to ``extractor``; an
    engine's error that cut the stream short is raised rather than libarchive's view of it."""
    import libarchive
    from libarchive.exception import ArchiveError

    pump, descriptor = (None, source) if isinstance(source, Descriptor) else (_Pump(source), None)
    if descriptor is not None:
        read_fd = descriptor.fd
        # As for the pump: a few MiB of pipe let the writer run ahead of the extraction.
        with contextlib.suppress(OSError):
            fcntl.fcntl(read_fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    else:
        assert pump is not None
        read_fd = pump.read_fd
    try:
        with libarchive.fd_reader(read_fd, block_size=2**20) as archive:
            extractor.entries(archive._pointer, select=True)
        if descriptor is not None:
            descriptor.finish()
    except ArchiveError as exc:
        _close(pump, drain=True)
        if pump is not None and pump.failure is not None:
            raise pump.failure from None
        raise InputError(f"cannot read the exported filesystem: {exc}") from None
    except Exception:
        _close(pump, drain=True)
        if pump is not None and pump.failure is not None:  # the engine's error cut the stream short
            raise pump.failure from None
        raise
    except BaseException:
        _close(pump, drain=False)
        raise
    _close(pump, drain=False)
    if pump is not None and pump.failure is not None:
        raise pump.failure


def _close(pump: _Pump | None, *, drain: bool) -> None:
    if pump is not None:
        pump.close(drain=drain)


def finish_archive(*, has_var: bool, mtime: int) -> bytes:
    """What every guest needs beside the base's files, as a tar extracted with the same flags
    (so nothing is written through a symlink the base planted at /etc)."""
    members: list[tarfile.TarInfo] = []
    data: dict[str, bytes] = {
        "etc/hostname": b"nex\n",
        "etc/hosts": b"127.0.0.1\tlocalhost nex\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    }
    for name in (*MADE, *(() if has_var else ("var",))):
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
        members.append(info)
    for name, body in data.items():
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(body), 0o644
        members.append(info)
    # DNS from the kernel's ip= configuration, as nex does.
    resolv = tarfile.TarInfo("etc/resolv.conf")
    resolv.type, resolv.linkname, resolv.mode = tarfile.SYMTYPE, "/proc/net/pnp", 0o777
    members.append(resolv)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info in members:
            info.mtime = mtime
            archive.addfile(info, io.BytesIO(data[info.name]) if info.name in data else None)
    return buffer.getvalue()
