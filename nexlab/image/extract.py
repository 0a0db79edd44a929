"""Write chosen entries of an image into a directory, safely.

The image is untrusted: its paths may climb out with ``..``, and an earlier
entry may have planted a symlink where a later entry's parent should be. So
every path is checked component by component, parents are opened with
``O_NOFOLLOW`` relative to the previous one (``dir_fd``), files are created
with ``O_EXCL | O_NOFOLLOW``, and symlinks are written as symlinks, never
followed. What cannot be written safely is skipped and reported, not raised:
one hostile name must not stop ``nexlab diff --deep``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nexlab.display import Summarized
from nexlab.errors import ImageFormatError, InputError
from nexlab.image.model import Entry
from nexlab.image.reader import Ext4Image

log = logging.getLogger("nexlab.image.extract")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class ExtractResult(Summarized):
    """What ``extract`` wrote under ``dest`` and what it refused, with the reason."""

    dest: Path
    written: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]

    def summary(self) -> str:
        return f"{self.dest}: {len(self.written)} written, {len(self.skipped)} skipped"


class _Refused(Exception):
    pass


def _parts(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p and p != "."]
    for part in parts:
        if part == "..":
            raise _Refused("'..' in the path")
        if "\0" in part:
            raise _Refused("NUL in the path")
    return parts


@contextlib.contextmanager
def _open_parent(root_fd: int, parts: list[str]) -> Iterator[int]:
    """A descriptor of the directory that will hold ``parts[-1]``, made as needed, never via a symlink."""
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _Refused(f"parent {part!r} is a symlink or not a directory") from exc
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _clear(name: str, parent: int) -> None:
    """Remove a non-directory left at ``name`` (an earlier entry with the same path)."""
    try:
        st = os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise _Refused("a directory is already there")
    os.unlink(name, dir_fd=parent)


def extract(
    fs: Ext4Image,
    entries: Iterable[Entry],
    dest_dir: str | os.PathLike[str],
    *,
    preserve_special_bits: bool = False,
) -> ExtractResult:
    """Write ``entries`` (files with content and mode, dirs, symlinks, FIFOs) under ``dest_dir``.

    Parents missing from ``entries`` are created. Device nodes and sockets are
    skipped, and so, unless ``preserve_special_bits``, are setuid/setgid/sticky
    bits: a setuid-root binary in a scratch directory is a gift to other users.
    Ownership is not set. Times (mtime, atime) are.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    mode_mask = 0o7777 if preserve_special_bits else 0o777
    written: list[str] = []
    skipped: list[tuple[str, str]] = []
    directories: list[tuple[list[str], Entry]] = []
    try:
        root_fd = os.open(dest, _DIR_FLAGS)
    except OSError as exc:
        raise InputError(f"cannot extract into {dest}: {exc.strerror}") from exc
    try:
        # Parents before children, whatever order the caller used.
        for entry in sorted(entries, key=lambda e: e.path.encode("utf-8", "surrogateescape").split(b"/")):
            try:
                parts = _parts(entry.path)
                if not parts:
                    continue  # the image root is dest itself
                with _open_parent(root_fd, parts) as parent:
                    _write_one(fs, entry, parts[-1], parent, mode_mask)
                if entry.type == "dir":
                    directories.append((parts, entry))
                written.append(entry.path)
            except _Refused as exc:
                log.warning("not extracted: %s: %s", entry.path, exc)
                skipped.append((entry.path, str(exc)))
            except (ImageFormatError, OSError) as exc:
                log.warning("not extracted: %s: %s", entry.path, exc)
                skipped.append((entry.path, str(exc)))
        # Directory modes and times last (deepest first): a read-only directory must
        # not block its children, and writing children changes a directory's mtime.
        for parts, entry in reversed(directories):
            with contextlib.suppress(_Refused, OSError), _open_parent(root_fd, parts) as parent:
                fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
                try:
                    os.utime(fd, ns=(entry.atime * 10**9, entry.mtime * 10**9))
                    os.fchmod(fd, entry.mode & mode_mask)
                finally:
                    os.close(fd)
    finally:
        os.close(root_fd)
    return ExtractResult(dest=dest, written=tuple(written), skipped=tuple(skipped))


def _write_one(fs: Ext4Image, entry: Entry, name: str, parent: int, mode_mask: int) -> None:
    times = (entry.atime * 10**9, entry.mtime * 10**9)
    if entry.type == "dir":
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(name, dir_fd=parent).st_mode):
                raise _Refused("something other than a directory is already there") from None
        return
    if entry.type == "file":
        _clear(name, parent)
        fd = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            try:
                for chunk in fs.iter_chunks(entry):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
            except ImageFormatError:
                os.unlink(name, dir_fd=parent)
                raise
            os.fchmod(fd, entry.mode & mode_mask)
            os.utime(fd, ns=times)
        finally:
            os.close(fd)
        return
    if entry.type == "symlink":
        if entry.target is None:
            raise _Refused("symlink without a target")
        _clear(name, parent)
        os.symlink(entry.target, name, dir_fd=parent)
        os.utime(name, ns=times, dir_fd=parent, follow_symlinks=False)
        return
    if entry.type == "fifo":
        _clear(name, parent)
        os.mkfifo(name, entry.mode & 0o777, dir_fd=parent)
        os.utime(name, ns=times, dir_fd=parent, follow_symlinks=False)
        return
    raise _Refused(f"{entry.type} entries are not extracted")
