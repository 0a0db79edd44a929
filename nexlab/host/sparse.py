"""Copying and hashing sparse files by their data extents (``SEEK_DATA``/``SEEK_HOLE``), in a
thread when asked."""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")

_CHUNK = 2**20
_ZEROS = bytes(_CHUNK)


def extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of each data extent of ``fd``, in order (the whole file where the
    file system cannot say)."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole is left
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, min(end, size) - start
        offset = end


#: Byte ranges (offset, length), sorted, none overlapping.
Ranges = list[tuple[int, int]]


def subtract(ranges: Ranges, minus: Ranges) -> Ranges:
    """The parts of ``ranges`` outside every range of ``minus``."""
    left: Ranges = []
    first = 0
    for start, length in ranges:
        end = start + length
        while first < len(minus) and sum(minus[first]) <= start:
            first += 1  # ends before this range, so before every later one
        position = start
        for cut_start, cut_length in itertools.islice(minus, first, None):
            if cut_start >= end:
                break
            if cut_start > position:
                left.append((position, cut_start - position))
            position = max(position, cut_start + cut_length)
        if position < end:
            left.append((position, end - position))
    return left


def copy_ranges(source: int, target: int, ranges: Ranges) -> None:
    """Copy each byte range of the file ``source`` to the same offset of ``target``, in the kernel."""
    for start, length in ranges:
        done = 0
        while done < length:
            copied = os.copy_file_range(source, target, length - done, offset_src=start + done, offset_dst=start + done)
            if copied == 0:
                raise OSError("the source shrank while it was copied")
            done += copied


#: ioctl FICLONE (linux/fs.h): share the blocks, on file systems that can (btrfs, XFS).
_FICLONE = 0x40049409


def copy(source: Path, target: Path) -> None:
    """``target`` := ``source`` with the same holes: a reflink where the file system has them,
    else the data extents copied inside the kernel."""
    import fcntl

    # Not "wb": ext4 flushes a file truncated to zero when it is closed (auto_da_alloc, for
    # editors that rewrite in place), which made every copy onto a new, empty temporary wait
    # for its writeback (0.02-0.06 s at 200 MiB, measured). An old file is emptied first.
    with open(source, "rb") as src, open(os.open(target, os.O_WRONLY | os.O_CREAT, 0o666), "wb") as dst:
        if os.fstat(dst.fileno()).st_size:
            dst.truncate(0)
        try:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return
        except OSError:
            pass  # ext4, tmpfs, another file system: copy
        size = os.fstat(src.fileno()).st_size
        copy_ranges(src.fileno(), dst.fileno(), list(extents(src.fileno(), size)))
        dst.truncate(size)


def sha256(path: Path) -> str:
    """sha256 of ``path``'s bytes (``sha256sum``'s), holes hashed as the zeros they read as."""
    with open(path, "rb") as handle:
        return sha256_of(handle, path)


def sha256_of(handle: BinaryIO, path: Path) -> str:
    """``sha256`` of a file already open (``path`` names it in errors)."""
    digest = hashlib.sha256()
    fd = handle.fileno()
    size = os.fstat(fd).st_size
    position = 0
    for start, length in extents(fd, size):
        _zeros(digest, start - position)
        handle.seek(start)
        left = length
        while left:
            chunk = handle.read(min(_CHUNK, left))
            if not chunk:
                raise OSError(f"{path} shrank while it was hashed")
            digest.update(chunk)
            left -= len(chunk)
        position = start + length
    _zeros(digest, size - position)
    return digest.hexdigest()


def _zeros(digest: hashlib._Hash, count: int) -> None:
    while count > 0:
        step = min(count, _CHUNK)
        digest.update(_ZEROS[:step] if step < _CHUNK else _ZEROS)
        count -= step


def crc32(path: Path) -> str:
    """CRC-32 of ``path``'s bytes (``zlib.crc32`` of all of them, holes as zeros), 8 hex digits:
    a check against damage, not against an adversary, at ~4x the speed of sha256."""
    value = 0
    # One buffer read into again and again: a new 1 MiB bytes per read is a fresh mapping
    # from malloc each time, and its page faults cost as much as the copy.
    buffer = memoryview(bytearray(_CHUNK))
    with open(path, "rb", buffering=0) as handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        position = 0
        for start, length in [*extents(fd, size), (size, 0)]:
            for hole in range(position, start, _CHUNK):  # zlib lets go of the GIL for large buffers
                value = zlib.crc32(_ZEROS[: min(_CHUNK, start - hole)], value)
            offset, end = start, start + length
            while offset < end:
                got = os.preadv(fd, [buffer[: min(_CHUNK, end - offset)]], offset)
                if not got:
                    raise OSError(f"{path} shrank while it was checked")
                value = zlib.crc32(buffer[:got], value)
                offset += got
            position = end
    return f"{value:08x}"


def in_background(function: Callable[..., T], *args: Any) -> Future[T]:
    """``function(*args)`` started now in a thread that never takes SIGINT or SIGTERM.

    The kernel gives a process's signal to any thread that does not block it; one taken by
    a helper thread would not interrupt the main thread's blocking call (a Ctrl-C during a
    container's run waited for its end), nor wait for the main thread's deferred clean-up.
    """

    def masked() -> T:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        return function(*args)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexlab-background")
    try:
        return pool.submit(masked)
    finally:
        pool.shutdown(wait=False)  # the submitted call still runs to its end
