"""One record per path in the image, and the DataFrame built from them.

The records are plain frozen dataclasses so the ``--json`` path never imports
pandas (about 0.4 s on its own); the DataFrame is made only when asked for.

The DataFrame is what a pandas user expects (README, "The notebook API"): the
path is the index, named ``path``, and not also a column (so ``sort_values("path")``
and ``groupby("path")`` take the index level); ``type`` and ``package`` are
categories; ``mode`` stays the integer of the JSON contract (``mode & 0o4000``
works) and ``mode_octal`` shows it as ``"0755"``; ``mtime`` is a UTC datetime
(second resolution, so any ext4 time fits, 1901 to 2446).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import astuple, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from nexlab.display import Summarized
from nexlab.sizes import format_size

if TYPE_CHECKING:
    import pandas as pd

#: ``system.data`` holds inline file content: it is the file, not an attribute of it.
_SKIPPED_XATTRS = frozenset({"system.data"})

#: Symlink hops allowed while resolving a path inside the image (the kernel's limit).
MAX_HOPS = 40


class EntryLike(Protocol):
    """What the inventory needs from ``nexlab.image.Entry``."""

    @property
    def path(self) -> str: ...
    @property
    def inode(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def mode(self) -> int: ...
    @property
    def uid(self) -> int: ...
    @property
    def gid(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def allocated(self) -> int: ...
    @property
    def nlink(self) -> int: ...
    @property
    def mtime(self) -> int | float: ...
    @property
    def target(self) -> str | None: ...
    @property
    def xattrs(self) -> Mapping[str, bytes]: ...


@dataclass(frozen=True, slots=True)
class FileRecord(Summarized):
    """One path of the image, as the JSON contract describes it."""

    path: str
    type: str
    mode: int
    uid: int
    gid: int
    size: int
    allocated: int
    nlink: int
    inode: int
    mtime: int
    sha256: str | None
    target: str | None
    xattrs: dict[str, str] = field(default_factory=dict)
    package: str | None = None

    def summary(self) -> str:
        what = f"{self.type} {self.mode:04o} {self.uid}:{self.gid} {format_size(self.size)}"
        return (
            f"{self.path} {what}"
            + (f" -> {self.target}" if self.target else "")
            + (f" [{self.package}]" if self.package else "")
        )

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}


COLUMNS = tuple(f.name for f in fields(FileRecord))
INTEGER = frozenset(("mode", "uid", "gid", "size", "allocated", "nlink", "inode", "mtime"))


def xattr_digests(xattrs: Mapping[str, bytes]) -> dict[str, str]:
    """Extended attributes as the contract has them: name -> sha256 of the value, sorted by name."""
    return {
        name: hashlib.sha256(value).hexdigest() for name, value in sorted(xattrs.items()) if name not in _SKIPPED_XATTRS
    }


def record_from_entry(entry: EntryLike, sha256: str | None, package: str | None) -> FileRecord:
    xattrs = xattr_digests(entry.xattrs)
    return FileRecord(
        path=entry.path,
        type=entry.type,
        mode=entry.mode & 0o7777,
        uid=entry.uid,
        gid=entry.gid,
        size=entry.size,
        allocated=entry.allocated,
        nlink=entry.nlink,
        inode=entry.inode,
        # ext4 keeps nanoseconds; the contract is whole seconds, floored so
        # that times before 1970 round the same way as stat(1).
        mtime=int(entry.mtime // 1),
        sha256=sha256 if entry.type == "file" else None,
        target=entry.target if entry.type == "symlink" else None,
        xattrs=xattrs,
        package=package,
    )


#: The DataFrame's columns, in order (the index is ``path``).
FRAME_COLUMNS = (*COLUMNS[1:3], "mode_octal", *COLUMNS[3:])


def to_dataframe(records: Iterable[FileRecord]) -> pd.DataFrame:
    """The inventory as a DataFrame, one row per path, indexed by path (pandas imported here only)."""
    import numpy as np
    import pandas as pd

    from nexlab.audit.table import FileTable

    if isinstance(records, FileTable):
        # An audit's columns straight into the frame: no record per path on the way.
        columns = records.frame_columns()
        data = {
            name: np.asarray(columns[name], dtype="int64") if name in INTEGER else columns[name] for name in COLUMNS
        }
        frame = pd.DataFrame(data, columns=list(COLUMNS))
    else:
        frame = pd.DataFrame.from_records([astuple(r) for r in records], columns=list(COLUMNS))
    frame = frame.set_index("path")
    frame["type"] = frame["type"].astype("category")
    frame["package"] = frame["package"].astype("category")
    frame["mode_octal"] = [f"{mode:04o}" for mode in frame["mode"]]
    # Seconds, not pandas' default nanoseconds: those stop at 2262 and ext4 goes to 2446.
    seconds = np.asarray(frame["mtime"], dtype="int64").astype("datetime64[s]")
    frame["mtime"] = pd.Series(seconds, index=frame.index).dt.tz_localize("UTC")
    return frame[list(FRAME_COLUMNS)]


def canonical_path(records: Mapping[str, FileRecord], path: str, *, follow_last: bool = True) -> str | None:
    """The canonical path of ``path`` with symlinks followed *inside the image*.

    Absolute targets are taken relative to the image's root, never the host's;
    ``..`` stops at the root. Returns None for a dangling link or a loop.
    """
    parts = [p for p in path.split("/") if p and p != "."]
    current = "/"
    hops = 0
    # A PathMap (the audit's columns) answers (type, target) without making a record.
    node: Callable[[str], tuple[str, str | None] | None] = getattr(records, "node", None) or _node_of(records)
    while parts:
        name = parts.pop(0)
        if name == "..":
            current = posixpath.dirname(current) or "/"
            continue
        candidate = posixpath.join(current, name)
        found = node(candidate)
        if found is None:
            return None
        kind, target = found
        if kind == "symlink" and (parts or follow_last):
            hops += 1
            if hops > MAX_HOPS or target is None:
                return None
            if target.startswith("/"):
                current = "/"
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        current = candidate
    return current


def _node_of(records: Mapping[str, FileRecord]) -> Callable[[str], tuple[str, str | None] | None]:
    def node(path: str) -> tuple[str, str | None] | None:
        record = records.get(path)
        return (record.type, record.target) if record is not None else None

    return node


def file_reader(
    fs: Any, records: Mapping[str, FileRecord], limit: int, notes: list[str]
) -> Callable[[str], bytes | None]:
    """Read a file of the image by path, following symlinks only inside the image.

    Reads stop at ``limit`` bytes (a hostile image must not fill our memory);
    a file cut short is noted, since what we parse from it is then partial.
    """

    def read(path: str) -> bytes | None:
        real = canonical_path(records, path)
        if real is None or records[real].type != "file":
            return None
        if records[real].size > limit:
            notes.append(f"{real}: only the first {limit} of {records[real].size} bytes were read")
        data: bytes | None = fs.read_path(real, limit=limit)
        return data

    return read
