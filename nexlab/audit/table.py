"""The inventory as columns: a million paths in about 150 bytes each, not ~1.8 KB of objects.

One frozen ``FileRecord`` per path cost ~500 bytes (the object, its boxed ints, a
64-character digest string, a fresh empty ``xattrs`` dict) and the audit kept
two dicts of them next to the reader's ``Entry`` list (issue 16: 1.8 KB per file
at 100k files). ``FileTable`` keeps the same facts as one list of path strings
(sorted, so a lookup is a bisection and a subtree is one slice) and typed arrays
for the numbers; the digest is 32 raw bytes; targets, extended attributes and
packages are kept only for the paths that have them. A ``FileRecord`` is made
when one is asked for, so ``Audit.files`` is still a sequence of ``FileRecord``
and every consumer of records keeps working; the passes over every path that
the budget, the DataFrame and the findings make read the columns instead.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections import Counter
from collections.abc import ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from typing import Any, overload

from nexlab.audit.inventory import EntryLike, FileRecord, xattr_digests

#: Bytes of a sha256 digest in the digest column.
DIGEST = 32
#: The ``xattrs`` of a path without any, in ``json_dicts`` (encoded, never changed).
_EMPTY: dict[str, str] = {}
#: The keys of ``json_dicts``, in the (sorted) order it gives them.
JSON_KEYS = (
    "allocated",
    "gid",
    "inode",
    "mode",
    "mtime",
    "nlink",
    "package",
    "path",
    "sha256",
    "size",
    "target",
    "type",
    "uid",
    "xattrs",
)
#: The integer columns of ``FileRecord``, in its order.
INTEGER_COLUMNS = ("mode", "uid", "gid", "size", "allocated", "nlink", "inode", "mtime")


class FileTable(Sequence[FileRecord]):
    """Records of an image's paths, sorted by path, stored as columns (read-only).

    ``rows`` (optional) selects some rows of the columns, in order: ``unique()``
    shares the columns of the whole table that way.
    """

    __slots__ = (
        "_allocated",
        "_digests",
        "_gid",
        "_hashed",
        "_inode",
        "_kinds",
        "_mode",
        "_mtime",
        "_nlink",
        "_package",
        "_package_names",
        "_paths",
        "_rows",
        "_size",
        "_targets",
        "_type",
        "_uid",
        "_unique",
        "_xattrs",
    )

    def __init__(
        self,
        paths: list[str],
        columns: dict[str, array[int]],
        kinds: tuple[str, ...],
        digests: bytearray,
        hashed: bytearray,
        targets: dict[int, str],
        xattrs: dict[int, dict[str, str]],
        package_names: tuple[str | None, ...] = (None,),
        rows: array[int] | None = None,
    ) -> None:
        self._paths = paths
        self._type = columns["type"]
        self._mode = columns["mode"]
        self._uid = columns["uid"]
        self._gid = columns["gid"]
        self._size = columns["size"]
        self._allocated = columns["allocated"]
        self._nlink = columns["nlink"]
        self._inode = columns["inode"]
        self._mtime = columns["mtime"]
        self._package = columns["package"]
        self._kinds = kinds
        self._digests = digests
        self._hashed = hashed
        self._targets = targets
        self._xattrs = xattrs
        self._package_names = package_names
        self._rows = rows
        self._unique = False

    # -- building --------------------------------------------------------------------------

    @classmethod
    def from_records(cls, records: Iterable[FileRecord]) -> FileTable:
        """A table of any records (sorted by path here, like ``sorted(records, key=path)``)."""
        builder = TableBuilder()
        for record in records:
            builder.add_record(record)
        return builder.build()

    def _columns(self) -> dict[str, array[int]]:
        return {
            "type": self._type,
            "mode": self._mode,
            "uid": self._uid,
            "gid": self._gid,
            "size": self._size,
            "allocated": self._allocated,
            "nlink": self._nlink,
            "inode": self._inode,
            "mtime": self._mtime,
            "package": self._package,
        }

    def _with(
        self, *, rows: array[int] | None, package: array[int] | None = None, names: tuple[str | None, ...] = ()
    ) -> FileTable:
        columns = self._columns()
        if package is not None:
            columns["package"] = package
        return FileTable(
            self._paths,
            columns,
            self._kinds,
            self._digests,
            self._hashed,
            self._targets,
            self._xattrs,
            names or self._package_names,
            rows,
        )

    def with_packages(self, owner: Mapping[str, str]) -> FileTable:
        """The same table with ``package`` set from ``owner`` (path -> package name)."""
        names = sorted(set(owner.values()))
        code = {name: number for number, name in enumerate(names, start=1)}
        column = array("I", bytes(4 * len(self._paths)))
        for path, name in owner.items():
            row = self._row_of(path)
            if row is not None:
                column[row] = code[name]
        return self._with(rows=self._rows, package=column, names=(None, *names))

    def unique(self) -> FileTable:
        """Each inode once, at its first path in sorted order (a view sharing the columns)."""
        if self._unique:
            return self
        inode = self._inode
        rows = self._row_range()
        top = max(inode, default=0)
        keep = array("I")
        if top <= 16 * len(inode) + (1 << 20):
            # A byte per inode number (ext4's are dense from 1): ~1 MB for a million
            # inodes, where a set of them would be ~40 MB.
            seen = bytearray(top + 1)
            for row in rows:
                number = inode[row]
                if not seen[number]:
                    seen[number] = 1
                    keep.append(row)
        else:
            seen_set: set[int] = set()
            for row in rows:
                number = inode[row]
                if number not in seen_set:
                    seen_set.add(number)
                    keep.append(row)
        view = self._with(rows=keep)
        view._unique = True
        return view

    # -- the sequence ------------------------------------------------------------------------

    def _row_range(self) -> Iterable[int]:
        return self._rows if self._rows is not None else range(len(self._paths))

    def __len__(self) -> int:
        return len(self._rows) if self._rows is not None else len(self._paths)

    @overload
    def __getitem__(self, index: int) -> FileRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[FileRecord]: ...
    def __getitem__(self, index: int | slice) -> FileRecord | Sequence[FileRecord]:
        rows = self._rows if self._rows is not None else range(len(self._paths))
        if isinstance(index, slice):
            return tuple(self.record(row) for row in rows[index])
        return self.record(rows[index])

    def __iter__(self) -> Iterator[FileRecord]:
        record = self.record
        for row in self._row_range():
            yield record(row)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"<FileTable of {len(self)} paths>"

    def record(self, row: int) -> FileRecord:
        """The ``FileRecord`` of row ``row`` of the columns (made now; nothing keeps it)."""
        kind = self._kinds[self._type[row]]
        return FileRecord(
            self._paths[row],
            kind,
            self._mode[row],
            self._uid[row],
            self._gid[row],
            self._size[row],
            self._allocated[row],
            self._nlink[row],
            self._inode[row],
            self._mtime[row],
            self.sha256(row),
            self._targets.get(row),
            dict(self._xattrs.get(row, ())),
            self._package_names[self._package[row]],
        )

    def json_dicts(self) -> Iterator[dict[str, Any]]:
        """``record.to_json()`` of every row, made from the columns (no record in between).

        The keys come in sorted order, and so do the names in ``xattrs`` (the table's own
        dicts: a caller encodes them, never changes them).
        """
        paths, kinds, names = self._paths, self._kinds, self._package_names
        targets, xattrs = self._targets, self._xattrs
        kind, mode, uid, gid, size = self._type, self._mode, self._uid, self._gid, self._size
        allocated, nlink, inode, mtime, package = self._allocated, self._nlink, self._inode, self._mtime, self._package
        sha256, empty = self.sha256, _EMPTY
        for row in self._row_range():
            # Keys in sorted order (the xattrs are sorted too), so json.dumps need not sort them.
            yield {
                "allocated": allocated[row],
                "gid": gid[row],
                "inode": inode[row],
                "mode": mode[row],
                "mtime": mtime[row],
                "nlink": nlink[row],
                "package": names[package[row]],
                "path": paths[row],
                "sha256": sha256(row),
                "size": size[row],
                "target": targets.get(row),
                "type": kinds[kind[row]],
                "uid": uid[row],
                "xattrs": xattrs.get(row, empty),
            }

    # -- columns, for the passes over every path ------------------------------------------------

    def sha256(self, row: int) -> str | None:
        if not self._hashed[row]:
            return None
        return self._digests[row * DIGEST : (row + 1) * DIGEST].hex()

    def digest(self, row: int) -> bytes | None:
        """The raw 32-byte digest of ``row`` (cheaper than ``sha256`` to group by)."""
        return self.raw_digest(row) if self._hashed[row] else None

    def raw_digest(self, row: int) -> bytes:
        """The 32 bytes of ``row``'s digest column (zeros when it was not hashed)."""
        return bytes(self._digests[row * DIGEST : (row + 1) * DIGEST])

    def digest_words(self) -> memoryview:
        """The digest column as 8-byte words (row ``r``'s digest starts at word ``4 * r``).

        Only ``hashed_column()`` says which rows hold one; release the view when done.
        """
        return memoryview(self._digests).cast("Q")

    def hashed_column(self) -> Sequence[int]:
        """1 for the rows with a digest, 0 for the others."""
        return self._hashed

    def rows(self) -> Iterable[int]:
        """The rows of the columns this table holds, in path order."""
        return self._row_range()

    def path(self, row: int) -> str:
        return self._paths[row]

    def kind(self, row: int) -> str:
        return self._kinds[self._type[row]]

    def target(self, row: int) -> str | None:
        return self._targets.get(row)

    def package(self, row: int) -> str | None:
        return self._package_names[self._package[row]]

    def column(self, name: str) -> Sequence[int]:
        """An integer column (mode, uid, gid, size, allocated, nlink, inode, mtime) by row."""
        return self._columns()[name]

    def kind_codes(self, *kinds: str) -> frozenset[int]:
        """The codes in the ``type`` column of the given type names."""
        return frozenset(code for code, kind in enumerate(self._kinds) if kind in kinds)

    def type_column(self) -> Sequence[int]:
        return self._type

    def type_column_rows(self) -> Iterable[int]:
        """The type codes of this table's rows (the whole column, or the selected rows)."""
        if self._rows is None:
            return self._type
        kind = self._type
        return (kind[row] for row in self._rows)

    def select(self, kinds: tuple[str, ...], mode_bits: int) -> list[int]:
        """Rows of one of ``kinds`` with any of ``mode_bits`` set, in path order."""
        codes = self.kind_codes(*kinds)
        kind, mode = self._type, self._mode
        return [row for row in self._row_range() if mode[row] & mode_bits and kind[row] in codes]

    def frame_columns(self) -> dict[str, Sequence[Any]]:
        """Every column of ``FileRecord`` in order, as sequences (for the DataFrame, without records)."""
        rows = self._rows
        whole = rows is None

        def pick(column: Sequence[Any]) -> Sequence[Any]:
            return column if whole else [column[row] for row in rows]  # type: ignore[union-attr]

        every = range(len(self._paths)) if whole else rows
        kinds, names = self._kinds, self._package_names
        return {
            "path": pick(self._paths),
            "type": [kinds[code] for code in pick(self._type)],
            **{name: pick(self._columns()[name]) for name in INTEGER_COLUMNS},
            "sha256": [self.sha256(row) for row in every],  # type: ignore[union-attr]
            "target": [self._targets.get(row) for row in every],  # type: ignore[union-attr]
            "xattrs": [dict(self._xattrs.get(row, ())) for row in every],  # type: ignore[union-attr]
            "package": [names[code] for code in pick(self._package)],
        }

    # -- by path ---------------------------------------------------------------------------------

    def _row_of(self, path: str) -> int | None:
        paths = self._paths
        row = bisect.bisect_left(paths, path)
        return row if row < len(paths) and paths[row] == path else None

    def rows_under(self, prefix: str) -> range:
        """The rows whose path starts with ``prefix`` (one run: the paths are sorted)."""
        paths = self._paths
        start = bisect.bisect_left(paths, prefix)
        end = start
        while end < len(paths) and paths[end].startswith(prefix):
            end += 1
        return range(start, end)

    def by_path(self) -> PathMap:
        """The records as a mapping path -> ``FileRecord`` (the whole table's rows)."""
        return PathMap(self)


def type_counts(records: Iterable[FileRecord]) -> Counter[str]:
    """How many records of each type (from the type column of a ``FileTable``, no records made)."""
    if isinstance(records, FileTable):
        kinds = records._kinds
        return Counter({kinds[code]: n for code, n in Counter(records.type_column_rows()).items()})
    return Counter(r.type for r in records)


class PathMap(Mapping[str, FileRecord]):
    """A ``FileTable`` as ``{path: FileRecord}``: lookups bisect the sorted paths."""

    __slots__ = ("table",)

    def __init__(self, table: FileTable) -> None:
        self.table = table

    def __getitem__(self, path: str) -> FileRecord:
        row = self.table._row_of(path) if isinstance(path, str) else None
        if row is None:
            raise KeyError(path)
        return self.table.record(row)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.table._row_of(path) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.table._paths)

    def __len__(self) -> int:
        return len(self.table._paths)

    def node(self, path: str) -> tuple[str, str | None] | None:
        """``(type, target)`` of ``path``, without making its record (symlink resolution)."""
        row = self.table._row_of(path)
        if row is None:
            return None
        return self.table.kind(row), self.table.target(row)

    def under(self, prefix: str) -> Iterator[tuple[str, FileRecord]]:
        """``(path, record)`` of the paths starting with ``prefix``, in order."""
        table = self.table
        for row in table.rows_under(prefix):
            yield table._paths[row], table.record(row)

    def items(self) -> ItemsView[str, FileRecord]:
        return _Items(self)

    def values(self) -> ValuesView[FileRecord]:
        return _Values(self)


class _Items(ItemsView[str, FileRecord]):
    _mapping: PathMap

    def __iter__(self) -> Iterator[tuple[str, FileRecord]]:
        table = self._mapping.table
        paths = table._paths
        for row in range(len(paths)):
            yield paths[row], table.record(row)


class _Values(ValuesView[FileRecord]):
    _mapping: PathMap

    def __iter__(self) -> Iterator[FileRecord]:
        table = self._mapping.table
        return (table.record(row) for row in range(len(table._paths)))


class TableBuilder:
    """Rows added one at a time (in any order), then ``build()`` sorts them by path.

    ``add`` takes the reader's entries as they are walked, so no list of entries is kept.
    """

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.columns: dict[str, array[int]] = {
            "type": array("B"),
            "mode": array("H"),
            "uid": array("I"),
            "gid": array("I"),
            "size": array("Q"),
            "allocated": array("Q"),
            "nlink": array("I"),
            "inode": array("I"),
            "mtime": array("q"),
        }
        self.kinds: dict[str, int] = {}
        self.digests = bytearray()
        self.hashed = bytearray()
        self.targets: dict[int, str] = {}
        self.xattrs: dict[int, dict[str, str]] = {}
        self.packages: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def _kind(self, kind: str) -> int:
        code = self.kinds.get(kind)
        if code is None:
            code = self.kinds[kind] = len(self.kinds)
        return code

    def add(self, entries: Iterable[EntryLike]) -> None:
        """Entries of the reader's walk, as they come (``record_from_entry`` without the records)."""
        paths, c, kinds = self.paths, self.columns, self.kinds
        # Bound appends hoisted out of the loop: this runs once per path of the image.
        put_path, put_type, put_mode = paths.append, c["type"].append, c["mode"].append
        put_uid, put_gid, put_size = c["uid"].append, c["gid"].append, c["size"].append
        put_allocated, put_nlink = c["allocated"].append, c["nlink"].append
        put_inode, put_mtime = c["inode"].append, c["mtime"].append
        for entry in entries:
            row = len(paths)
            put_path(entry.path)
            kind = entry.type
            code = kinds.get(kind)
            put_type(self._kind(kind) if code is None else code)
            put_mode(entry.mode & 0o7777)
            put_uid(entry.uid)
            put_gid(entry.gid)
            put_size(entry.size)
            put_allocated(entry.allocated)
            put_nlink(entry.nlink)
            put_inode(entry.inode)
            # ext4 keeps nanoseconds; the contract is whole seconds, floored (as record_from_entry).
            mtime = entry.mtime
            put_mtime(mtime if type(mtime) is int else int(mtime // 1))
            if kind == "symlink" and entry.target is not None:
                self.targets[row] = entry.target
            if entry.xattrs:
                digests = xattr_digests(entry.xattrs)
                if digests:
                    self.xattrs[row] = digests

    def add_record(self, record: FileRecord) -> None:
        row = len(self.paths)
        c = self.columns
        self.paths.append(record.path)
        c["type"].append(self._kind(record.type))
        for name in ("mode", "uid", "gid", "size", "allocated", "nlink", "inode", "mtime"):
            c[name].append(getattr(record, name))
        if record.target is not None:
            self.targets[row] = record.target
        if record.xattrs:
            self.xattrs[row] = dict(sorted(record.xattrs.items()))
        if record.sha256 is not None:
            self.set_digest(row, bytes.fromhex(record.sha256))
        if record.package is not None:
            self.packages[row] = record.package

    def set_digest(self, row: int, digest: bytes) -> None:
        self._grow_digests()
        self.hashed[row] = 1
        self.digests[row * DIGEST : (row + 1) * DIGEST] = digest

    def _grow_digests(self) -> None:
        grow = len(self.paths) - len(self.hashed)
        if grow > 0:
            self.hashed.extend(bytes(grow))
            self.digests.extend(bytes(grow * DIGEST))

    def file_rows_by_inode(self) -> Sequence[int]:
        """Rows of regular files, sorted by inode (hardlinks next to each other).

        Often the walk meets them in inode order already (mke2fs -d numbers inodes as
        it walks): then the rows stay a compact array instead of a sorted list of ints.
        """
        code = self.kinds.get("file")
        kinds = self.columns["type"]
        inode = self.columns["inode"]
        rows = array("I", (row for row in range(len(self.paths)) if kinds[row] == code))
        if all(inode[a] <= inode[b] for a, b in itertools.pairwise(rows)):
            return rows
        return sorted(rows, key=inode.__getitem__)

    def build(self) -> FileTable:
        n = len(self.paths)
        # Without hashing the digest column stays empty: ``hashed`` is all zero, nothing reads it.
        if self.hashed:
            self._grow_digests()
        else:
            self.hashed = bytearray(n)
        paths = self.paths
        order: list[int] | None = None
        # The walk's order often is the sorted one already; only otherwise is there a permutation.
        if not all(a < b for a, b in itertools.pairwise(paths)):
            order = sorted(range(n), key=paths.__getitem__)
        names = sorted(set(self.packages.values()))
        codes = {name: number for number, name in enumerate(names, start=1)}
        package = array("I", bytes(4 * n))
        for row, name in self.packages.items():
            package[row] = codes[name]
        columns = {**self.columns, "package": package}
        targets, xattrs = self.targets, self.xattrs
        digests, hashed = self.digests, self.hashed
        if order is not None:
            # Each column is permuted in turn, so at most one extra column is alive at a time.
            for name, column in columns.items():
                columns[name] = array(column.typecode, map(column.__getitem__, order))
            paths = [paths[row] for row in order]
            if targets or xattrs:
                position = array("I", bytes(4 * n))  # old row -> new row
                for new, row in enumerate(order):
                    position[row] = new
                targets = {position[row]: value for row, value in targets.items()}
                xattrs = {position[row]: value for row, value in xattrs.items()}
            hashed = bytearray(map(hashed.__getitem__, order))
            if digests:
                moved = bytearray(len(digests))
                for new, row in enumerate(order):
                    if hashed[new]:
                        moved[new * DIGEST : (new + 1) * DIGEST] = digests[row * DIGEST : (row + 1) * DIGEST]
                digests = moved
        kinds = tuple(sorted(self.kinds, key=self.kinds.__getitem__))
        return FileTable(paths, columns, kinds, digests, hashed, targets, xattrs, (None, *names))
