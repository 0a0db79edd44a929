"""Package versions and sizes on both sides, through the auditor's apk/dpkg parsers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from nexlab.diff.model import PackageChange, SizeRow

if TYPE_CHECKING:
    from nexlab.audit.packages import Package
    from nexlab.image import Entry


class _Readable(Protocol):
    def read_path(self, path: str, limit: int | None = None) -> bytes | None: ...

    def lookup(self, path: str, follow: bool = False) -> Entry | None: ...


def packages_of(fs: _Readable, entries: Mapping[str, Entry]) -> tuple[list[Package], list[str]]:
    """The packages the image's databases list, with their real sizes in this image."""
    from nexlab.audit.inventory import record_from_entry
    from nexlab.audit.packages import APK_DB, DPKG_STATUS, attribute, read_databases

    if not any(fs.lookup(path, follow=True) is not None for path in (APK_DB, DPKG_STATUS)):
        return [], []  # no package database: nothing to attribute, skip building the records
    records = {path: record_from_entry(entry, None, None) for path, entry in entries.items()}

    parsed, notes = read_databases(fs.read_path)
    packages, _owner = attribute(parsed, records)
    return packages, notes


def compare_packages(a: list[Package], b: list[Package]) -> tuple[tuple[PackageChange, ...], tuple[SizeRow, ...]]:
    """Version changes (added, removed, upgraded, downgraded) and per-package size rows."""
    left = {(p.manager, p.name): p for p in a}
    right = {(p.manager, p.name): p for p in b}
    changes: list[PackageChange] = []
    for key in sorted(left.keys() | right.keys()):
        old, new = left.get(key), right.get(key)
        manager, name = key
        if old is None and new is not None:
            changes.append(PackageChange(name, manager, "added", None, new.version, 0, new.size))
        elif new is None and old is not None:
            changes.append(PackageChange(name, manager, "removed", old.version, None, old.size, 0))
        elif old is not None and new is not None and old.version != new.version:
            order = compare_versions(old.version, new.version)
            kind = "upgraded" if order < 0 else "downgraded" if order > 0 else "changed"
            changes.append(PackageChange(name, manager, kind, old.version, new.version, old.size, new.size))
    sizes_a = {p.name: p.size for p in a}
    sizes_b = {p.name: p.size for p in b}
    rows = [SizeRow(name, sizes_a.get(name, 0), sizes_b.get(name, 0)) for name in sizes_a.keys() | sizes_b.keys()]
    return tuple(changes), tuple(sorted(rows, key=lambda r: (-abs(r.delta), r.name)))


_PART = re.compile(r"\d+|[A-Za-z]+|[~]|[^\dA-Za-z~]+")


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1. Numeric runs compare as numbers, ``~`` sorts first (dpkg and apk agree on
    these for ordinary versions such as ``3.1.4-r5`` < ``3.3.2-r0`` or ``1.0~rc1`` < ``1.0``)."""
    ka, kb = _key(a), _key(b)
    return (ka > kb) - (ka < kb)


def _key(version: str) -> list[tuple[int, int, str]]:
    key: list[tuple[int, int, str]] = []
    for part in _PART.findall(version):
        if part == "~":
            key.append((-1, 0, ""))
        elif part.isdigit():
            key.append((1, int(part), ""))
        elif part.isalpha():
            key.append((2, 0, part))
        else:
            key.append((0, 0, part))
    # The end of a version sorts after "~" and before anything else.
    key.append((-1, 1, ""))
    return key
