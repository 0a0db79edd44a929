"""A BSD mtree manifest of an image, written by libarchive from the image's own content.

libarchive computes ``sha256digest`` from the bytes it is fed (3.6 cannot take
a digest we already have), so the content is read again from the image,
streamed chunk by chunk. Every path gets its own entry: a hardlink is written
as a full file, so it keeps its size and digest (tar streams lose both).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nexlab.errors import InputError

KEYWORDS = "!all,type,mode,uid,gid,size,link,sha256,time"

_FILETYPES = {
    "file": 0o100000,
    "dir": 0o040000,
    "symlink": 0o120000,
    "char": 0o020000,
    "block": 0o060000,
    "fifo": 0o010000,
    "socket": 0o140000,
}


def _name(path: str) -> bytes:
    # mtree paths are relative to the root; surrogate escapes go back to their bytes.
    return b"." if path == "/" else b"." + os.fsencode(path)


def _symlink_setter() -> Any:
    # libarchive-c sets a link target with archive_entry_update_link_utf8, which
    # (in libarchive 3.6) makes it a *hardlink* unless the entry was already
    # marked as a symlink; the mtree writer then crashes at close. Setting the
    # symlink directly is the documented C call.
    import ctypes

    import libarchive.ffi as ffi

    setter = ffi.libarchive.archive_entry_copy_symlink
    setter.argtypes = [ffi.c_archive_entry_p, ctypes.c_char_p]
    setter.restype = None
    return setter


def write_mtree(image: str | os.PathLike[str], destination: str | os.PathLike[str]) -> Path:
    """Write the mtree manifest of ``image`` to ``destination`` (sorted by path)."""
    import libarchive
    import libarchive.ffi as ffi
    from libarchive.entry import ArchiveEntry

    from nexlab.image import open_image
    from nexlab.image.compressed import plain_image

    target = Path(destination)
    if target.is_dir():
        raise InputError(f"{target} is a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    set_symlink = _symlink_setter()
    with (
        plain_image(image) as readable,
        open_image(readable) as fs,
        libarchive.file_writer(os.fspath(target), "mtree", options=KEYWORDS) as archive,
    ):
        pointer = archive._pointer
        for entry in sorted(fs.walk(), key=lambda e: e.path):
            is_file = entry.type == "file"
            # A non-UTF-8 header codec makes libarchive-c copy the name's bytes as
            # they are; with "utf-8" it converts, and drops names that are not UTF-8.
            header = ArchiveEntry(
                header_codec="latin-1",
                pathname=_name(entry.path),
                filetype=_FILETYPES[entry.type],
                perm=entry.mode & 0o7777,
                uid=entry.uid,
                gid=entry.gid,
                mtime=int(entry.mtime),
                size=entry.size if is_file else 0,
            )
            if entry.type == "symlink" and entry.target is not None:
                set_symlink(header._entry_p, os.fsencode(entry.target))
            if entry.type in ("char", "block") and entry.rdev:
                header.rdevmajor, header.rdevminor = entry.rdev
            ffi.write_header(pointer, header._entry_p)
            if is_file:
                for chunk in fs.iter_chunks(entry):
                    data = bytes(chunk)
                    ffi.write_data(pointer, data, len(data))
            ffi.write_finish_entry(pointer)
    return target
