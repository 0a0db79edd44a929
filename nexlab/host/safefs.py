"""File operations on a tree an image controls, that never leave it.

A staging tree is written by a container from an untrusted base image: any
directory in it may be a symlink to the host (``etc -> /etc``), and a path
checked component by component can still be followed by a later ``open``.
So every operation here works from a directory file descriptor, opens each
component with ``O_NOFOLLOW`` (a symlink is a leaf, never a way in), checks
that what it opened is the inode it stat'ed, and acts with ``dir_fd=`` on the
last component. The walk is iterative (a 2,000-level tree is no
``RecursionError``) and holds a bounded number of descriptors: deeper
ancestors are closed and found again through ``..``, checked by inode.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nexlab.errors import NexlabError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Ancestors of the directory being walked whose descriptors stay open; deeper ones are reopened.
_OPEN_ANCESTORS = 64


class TreeChangedError(NexlabError):
    """The tree changed under a walk (an entry was swapped for another one)."""


@dataclass(frozen=True)
class Entry:
    """One entry of a walk: act on it with ``dir_fd=entry.dir_fd`` and ``entry.name``."""

    dir_fd: int
    name: str
    #: Path relative to the walk's root ("" for the root itself).
    path: str
    stat: os.stat_result

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.stat.st_mode)


@dataclass
class _Frame:
    fd: int
    path: str
    name: str
    device: int
    inode: int
    names: list[str] = field(default_factory=list)


def open_directory(path: Path) -> int:
    """A descriptor of ``path``, which must be a real directory (not a link to one)."""
    return os.open(path, _DIR_FLAGS)


def _open_child_dir(parent: int, name: str, expected: os.stat_result) -> int:
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (expected.st_dev, expected.st_ino):
        os.close(fd)
        raise TreeChangedError(f"{name} changed while it was being opened")
    return fd


def _reopen_parent(child_fd: int, parent: _Frame) -> int:
    fd = os.open("..", _DIR_FLAGS, dir_fd=child_fd)
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (parent.device, parent.inode):
        os.close(fd)
        raise TreeChangedError(f"the parent of {parent.path or '/'} is not the directory walked into")
    return fd


def _list(fd: int) -> list[str]:
    # listdir(fd) reads from the descriptor's offset: a duplicate leaves ``fd`` untouched.
    duplicate = os.dup(fd)
    try:
        return sorted(os.listdir(duplicate), reverse=True)
    finally:
        os.close(duplicate)


def walk(root: Path, *, include_root: bool = False, writable: bool = False, beneath: str = "") -> Iterator[Entry]:
    """Every entry under ``root``, children before their directory (post-order).

    Links are entries, never followed; other filesystems mounted inside are not
    entered. A directory's ``stat`` is taken when it is yielded, after its
    children, so it sees what the caller did to them. ``writable`` gives a
    directory we own but may not read or search (a normal user's copy of 0555
    dirs) the owner's rwx first, as ``rm -rf`` needs. ``beneath``: walk
    ``root/beneath`` instead, reached through real directories only (nothing
    when it is not one); paths are then relative to it.
    """
    if beneath:
        if include_root:
            raise ValueError("include_root walks root itself, not a directory beneath it")
        with directory_beneath(root, beneath) as found:
            if found is None:
                return
            root_fd = os.dup(found)
    else:
        root_fd = open_directory(root)
    root_stat = os.fstat(root_fd)
    stack = [_Frame(root_fd, "", root.name, root_stat.st_dev, root_stat.st_ino, _list(root_fd))]
    try:
        while stack:
            top = stack[-1]
            if top.names:
                name = top.names.pop()
                info = os.stat(name, dir_fd=top.fd, follow_symlinks=False)
                path = f"{top.path}/{name}" if top.path else name
                if not stat.S_ISDIR(info.st_mode) or info.st_dev != root_stat.st_dev:
                    yield Entry(top.fd, name, path, info)
                    continue
                if writable and info.st_uid == os.geteuid() and info.st_mode & 0o700 != 0o700:
                    # A directory is never a link once lstat said so: the tree is not written meanwhile.
                    os.chmod(name, stat.S_IMODE(info.st_mode) | 0o700, dir_fd=top.fd)
                    info = os.stat(name, dir_fd=top.fd, follow_symlinks=False)
                child = _open_child_dir(top.fd, name, info)
                stack.append(_Frame(child, path, name, info.st_dev, info.st_ino, _list(child)))
                if len(stack) > _OPEN_ANCESTORS + 1:
                    far = stack[-_OPEN_ANCESTORS - 2]
                    if far.fd >= 0 and far is not stack[0]:
                        os.close(far.fd)
                        far.fd = -1
                continue
            stack.pop()
            if not stack:
                os.close(top.fd)
                top.fd = -1
            if stack:
                parent = stack[-1]
                if parent.fd < 0:
                    parent.fd = _reopen_parent(top.fd, parent)
                os.close(top.fd)
                top.fd = -1
                info = os.stat(top.name, dir_fd=parent.fd, follow_symlinks=False)
                if (info.st_dev, info.st_ino) != (top.device, top.inode):
                    raise TreeChangedError(f"{top.path} changed during the walk")
                yield Entry(parent.fd, top.name, top.path, info)
            elif include_root:
                parent_fd = os.open(root.absolute().parent, _DIR_FLAGS)
                try:
                    yield Entry(parent_fd, root.name, "", os.stat(root.name, dir_fd=parent_fd, follow_symlinks=False))
                finally:
                    os.close(parent_fd)
    finally:
        # The root's descriptor is the first frame's, or already closed when the walk ended.
        for frame in stack:
            if frame.fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(frame.fd)


def rmtree(root: Path) -> None:
    """Delete ``root`` and everything under it without following a link; iterative. A missing
    ``root`` is not an error."""
    if not os.path.lexists(root):
        return
    if os.path.islink(root) or not os.path.isdir(root):
        os.unlink(root)
        return
    for entry in walk(root, include_root=True, writable=True):
        if entry.is_dir:
            os.rmdir(entry.name, dir_fd=entry.dir_fd)
        else:
            os.unlink(entry.name, dir_fd=entry.dir_fd)


@contextlib.contextmanager
def directory_beneath(root: Path, relative: str) -> Iterator[int | None]:
    """A descriptor of ``root/relative`` reached through real directories only, or None when a
    component is missing, not a directory or a symlink."""
    fd = open_directory(root)
    try:
        for part in [p for p in relative.split("/") if p]:
            if part in (".", ".."):
                raise ValueError(f"{relative!r} is not a plain relative path")
            try:
                info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                yield None
                return
            if not stat.S_ISDIR(info.st_mode):
                yield None
                return
            child = _open_child_dir(fd, part, info)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def regular_file_beneath(root: Path, relative: str, flags: int = os.O_RDONLY) -> Iterator[int | None]:
    """An open descriptor of the regular file ``root/relative`` (never a link, device or FIFO:
    opening a device node copied from an image would open the host's device), or None."""
    directory, _, name = relative.rpartition("/")
    with directory_beneath(root, directory) as parent:
        if parent is None:
            yield None
            return
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            yield None
            return
        if not stat.S_ISREG(info.st_mode):
            yield None
            return
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
                raise TreeChangedError(f"{relative} changed while it was being opened")
            yield fd
        finally:
            os.close(fd)


def read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1024 * 1024):
        chunks.append(chunk)
    return b"".join(chunks)


def rewrite(fd: int, data: bytes) -> None:
    """Replace the content of the open file ``fd`` in place (its inode, owner and mode stay)."""
    os.lseek(fd, 0, os.SEEK_SET)
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.ftruncate(fd, len(data))
