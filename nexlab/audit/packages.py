"""Package databases (apk and dpkg) and which package owns which path.

Both parsers take the database text and return ``ParsedPackage``s with the paths
as the database lists them. ``attribute`` then maps those paths onto the image:
dpkg diversions are applied, and parent directories are resolved through the
image's own symlinks, because Debian's merged /usr lists ``/bin/ls`` while the
file lives at ``/usr/bin/ls``.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nexlab.audit.inventory import FileRecord, canonical_path
from nexlab.display import Summarized
from nexlab.sizes import format_size

APK_DB = "/lib/apk/db/installed"
DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_INFO = "/var/lib/dpkg/info"
DPKG_DIVERSIONS = "/var/lib/dpkg/diversions"

#: dpkg states whose files are (at least partly) on disk.
if TYPE_CHECKING:
    import pandas as pd

_DPKG_PRESENT = frozenset(
    {"installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending"}
)


@dataclass(frozen=True)
class ParsedPackage:
    name: str
    version: str
    manager: str
    declared_size: int
    paths: tuple[str, ...]
    #: The database name of a dpkg package's file list (``libc6:amd64``).
    list_name: str = ""


@dataclass(frozen=True)
class Package(Summarized):
    """A package as the audit reports it (the JSON ``packages`` entries)."""

    name: str
    version: str
    manager: str
    #: What the database says: apk ``I:`` in bytes, dpkg ``Installed-Size`` KiB × 1024.
    declared_size: int
    #: Allocated bytes of the package's non-directory paths in this image, each inode once.
    size: int
    #: Non-directory paths of the package present in this image.
    files: int

    def summary(self) -> str:
        return f"{self.name} {self.version} ({self.manager}): {self.files} files, {format_size(self.size)}"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "manager": self.manager,
            "declared_size": self.declared_size,
            "size": self.size,
            "files": self.files,
        }


def packages_frame(packages: Iterable[Package]) -> pd.DataFrame:
    """One row per package, largest first, indexed by name; ``manager`` a category (pandas imported here)."""
    import pandas as pd

    columns = ["name", "version", "manager", "declared_size", "size", "files"]
    frame = pd.DataFrame([[getattr(p, c) for c in columns] for p in packages], columns=columns)
    frame["manager"] = frame["manager"].astype("category")
    frame = frame.sort_values(["size", "name"], ascending=[False, True], kind="stable")
    return frame.set_index("name")


def stanzas(text: str) -> Iterator[list[str]]:
    """The blank-line separated records of a dpkg status file or an apk database, as lines."""
    stanza: list[str] = []
    for line in text.splitlines():
        if line.strip():
            stanza.append(line)
        elif stanza:
            yield stanza
            stanza = []
    if stanza:
        yield stanza


def _int(value: str, scale: int = 1) -> int:
    try:
        return max(0, int(value.strip())) * scale
    except ValueError:
        return 0


def dpkg_fields(stanza: list[str]) -> dict[str, str]:
    """A dpkg stanza's fields by name (the first line of each: continuations are not needed here)."""
    fields = {}
    for line in stanza:
        if line[:1] in (" ", "\t"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def parse_apk(text: str) -> list[ParsedPackage]:
    """Parse ``/lib/apk/db/installed`` (``P:`` name, ``V:`` version, ``I:`` bytes, ``F:``/``R:`` paths)."""
    packages = []
    for stanza in stanzas(text):
        fields: dict[str, str] = {}
        paths: list[str] = []
        directory = ""
        for line in stanza:
            key, sep, value = line.partition(":")
            if not sep or len(key) != 1:
                continue
            if key == "F":
                directory = value.strip("/")
                paths.append("/" + directory)
            elif key == "R":
                paths.append(posixpath.join("/", directory, value))
            else:
                fields.setdefault(key, value)
        if "P" in fields:
            packages.append(
                ParsedPackage(
                    name=fields["P"],
                    version=fields.get("V", ""),
                    manager="apk",
                    declared_size=_int(fields.get("I", "0")),
                    paths=tuple(paths),
                )
            )
    return packages


def parse_dpkg_status(text: str) -> list[ParsedPackage]:
    """Parse ``/var/lib/dpkg/status``; paths are filled in from ``info/*.list`` by ``read_databases``."""
    packages = []
    for stanza in stanzas(text):
        fields = dpkg_fields(stanza)
        name = fields.get("Package")
        status = fields.get("Status", "").split()
        if not name or not status or status[-1] not in _DPKG_PRESENT:
            continue
        arch = fields.get("Architecture", "")
        list_name = f"{name}:{arch}" if fields.get("Multi-Arch") == "same" and arch != "all" else name
        packages.append(
            ParsedPackage(
                name=name,
                version=fields.get("Version", ""),
                manager="dpkg",
                declared_size=_int(fields.get("Installed-Size", "0"), 1024),
                paths=(),
                list_name=list_name,
            )
        )
    return packages


def parse_dpkg_list(text: str) -> tuple[str, ...]:
    return tuple(line for line in text.splitlines() if line.startswith("/") and line != "/.")


def parse_dpkg_diversions(text: str) -> dict[str, tuple[str, str]]:
    """``path -> (diverted-to, diverting package)`` from dpkg's diversions file (three lines each)."""
    lines = text.splitlines()
    return {lines[i]: (lines[i + 1], lines[i + 2]) for i in range(0, len(lines) - 2, 3)}


def read_databases(read: Callable[[str], bytes | None]) -> tuple[list[ParsedPackage], list[str]]:
    """Every package database found in the image, and notes on what could not be read."""
    notes: list[str] = []
    packages: list[ParsedPackage] = []
    apk = read(APK_DB)
    if apk is not None:
        packages += parse_apk(apk.decode("utf-8", "surrogateescape"))
    status = read(DPKG_STATUS)
    if status is not None:
        raw = read(DPKG_DIVERSIONS)
        diversions = parse_dpkg_diversions(raw.decode("utf-8", "surrogateescape")) if raw else {}
        for package in parse_dpkg_status(status.decode("utf-8", "surrogateescape")):
            listing = read(f"{DPKG_INFO}/{package.list_name}.list")
            if listing is None and package.list_name != package.name:
                listing = read(f"{DPKG_INFO}/{package.name}.list")
            if listing is None:
                notes.append(f"dpkg: no file list for {package.name}")
                paths: tuple[str, ...] = ()
            else:
                paths = tuple(
                    _divert(p, package.name, diversions)
                    for p in parse_dpkg_list(listing.decode("utf-8", "surrogateescape"))
                )
            packages.append(
                ParsedPackage(package.name, package.version, "dpkg", package.declared_size, paths, package.list_name)
            )
    return packages, notes


def _divert(path: str, owner: str, diversions: Mapping[str, tuple[str, str]]) -> str:
    diverted = diversions.get(path)
    if diverted is None or diverted[1] == owner:
        return path
    return diverted[0]


class _Canonical:
    """Resolve a listed path's parent directories through the image's symlinks, cached per directory."""

    def __init__(self, records: Mapping[str, FileRecord]) -> None:
        self.records = records
        self.parents: dict[str, str | None] = {}

    def __call__(self, path: str) -> str | None:
        if path in self.records:
            return path
        parent, name = posixpath.split(path)
        if parent not in self.parents:
            self.parents[parent] = canonical_path(self.records, parent)
        real_parent = self.parents[parent]
        if real_parent is None:
            return None
        candidate = posixpath.join(real_parent, name)
        return candidate if candidate in self.records else None


def attribute(parsed: list[ParsedPackage], records: Mapping[str, FileRecord]) -> tuple[list[Package], dict[str, str]]:
    """The packages with their real sizes, and ``path -> owning package`` for the image's paths.

    A non-directory path listed by several packages (rare: diversions gone wrong)
    goes to the first by name. A directory is owned only when exactly one
    package lists it: ``/usr/bin`` belongs to everyone and so to no one.
    """
    canonical = _Canonical(records)
    listed: dict[str, set[str]] = defaultdict(set)
    for package in parsed:
        for path in package.paths:
            real = canonical(path)
            if real is not None:
                listed[real].add(package.name)
    owner: dict[str, str] = {}
    for path, names in listed.items():
        if records[path].type != "dir":
            owner[path] = min(names)
        elif len(names) == 1:
            owner[path] = next(iter(names))
    sizes: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    seen: set[tuple[str, int]] = set()
    for path, name in owner.items():
        record = records[path]
        if record.type == "dir":
            continue
        counts[name] += 1
        if (name, record.inode) not in seen:
            seen.add((name, record.inode))
            sizes[name] += record.allocated
    packages = sorted(
        (
            Package(p.name, p.version, p.manager, p.declared_size, sizes.get(p.name, 0), counts.get(p.name, 0))
            for p in parsed
        ),
        key=lambda p: (p.manager, p.name, p.version),
    )
    return packages, owner
