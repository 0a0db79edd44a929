"""Files a package database lists that the image lacks: what ``dpkg --verify`` and
``apk audit`` would call missing, minus what the image leaves out on purpose.

Only files count: dpkg's ``info/*.md5sums`` (the files ``dpkg --verify`` checks) and
apk's ``R:`` lines. A directory a package lists may be gone for good reasons
(``/boot`` in a container, apt's ``partial`` directories) and is not reported.
What dpkg's ``path-exclude`` filters or nexlab slim's record exclude
(``nexlab.slim.exclusions``) was removed on purpose and is not missing either.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping

from nexlab.audit.inventory import FileRecord
from nexlab.audit.packages import (
    APK_DB,
    DPKG_DIVERSIONS,
    DPKG_INFO,
    DPKG_STATUS,
    _Canonical,
    _divert,
    parse_dpkg_diversions,
    parse_dpkg_status,
    stanzas,
)
from nexlab.slim.exclusions import read_exclusions

Read = Callable[[str], bytes | None]


def _text(data: bytes | None) -> str:
    return data.decode("utf-8", "surrogateescape") if data is not None else ""


def listed_files(read: Read) -> list[tuple[str, str]]:
    """(package, absolute path) of every file the image's databases list."""
    files: list[tuple[str, str]] = []
    for stanza in stanzas(_text(read(APK_DB))):
        name, directory = "", ""
        for line in stanza:
            key, _, value = line.partition(":")
            if key == "P":
                name = value
            elif key == "F":
                directory = value.strip("/")
            elif key == "R" and name:
                files.append((name, posixpath.join("/", directory, value)))
    status = read(DPKG_STATUS)
    if status is not None:
        diversions = parse_dpkg_diversions(_text(read(DPKG_DIVERSIONS)))
        for package in parse_dpkg_status(_text(status)):
            sums = read(f"{DPKG_INFO}/{package.list_name}.md5sums")
            if sums is None and package.list_name != package.name:
                sums = read(f"{DPKG_INFO}/{package.name}.md5sums")
            for line in _text(sums).splitlines():
                _digest, _, path = line.partition("  ")
                if path:
                    files.append((package.name, _divert("/" + path.lstrip("/"), package.name, diversions)))
    return files


def missing_files(read: Read, records: Mapping[str, FileRecord]) -> list[tuple[str, str]]:
    """(package, path) of listed files the image lacks and does not exclude on purpose."""
    canonical = _Canonical(records)
    exclusions = read_exclusions(read, records)
    return sorted(
        (package, path)
        for package, path in listed_files(read)
        if canonical(path) is None and not exclusions.excluded(path)
    )
