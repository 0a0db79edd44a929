"""Which paths an image leaves out on purpose: dpkg's ``path-exclude``/``path-include``
filters and nexlab slim's record. The audit reads them so that a file a package
lists but the image left out is not reported as missing.

dpkg's semantics (``src/main/filters.c``): every filter is tried in the order the
configuration gives them, and the last one that matches wins; a pattern is an
``fnmatch`` glob without ``FNM_PATHNAME`` on the absolute path (``*`` matches ``/``).
dpkg reads ``/etc/dpkg/dpkg.cfg.d/*`` in name order, skipping names with
characters other than letters, digits, ``_`` and ``-`` (so no ``foo.dpkg-old``),
then ``/etc/dpkg/dpkg.cfg``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nexlab.slim.categories import Category
from nexlab.slim.slim import RECORD, parse_record

DPKG_CONFIG_DIR = "/etc/dpkg/dpkg.cfg.d"
DPKG_CONFIG = "/etc/dpkg/dpkg.cfg"
_DPKG_NAME = re.compile(r"[A-Za-z0-9_-]+")
_FILTER = re.compile(r"^(path-exclude|path-include)(?:\s*=\s*|\s+)(\S+)\s*$")


@dataclass(frozen=True)
class Exclusions:
    #: (``True`` for exclude, glob) in dpkg's order.
    dpkg: tuple[tuple[bool, str], ...] = ()
    #: The categories nexlab slim recorded.
    slimmed: tuple[Category, ...] = ()

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (absolute) is left out on purpose."""
        skip = False
        for exclude, pattern in self.dpkg:
            if fnmatch.fnmatchcase(path, pattern):
                skip = exclude
        return skip or any(category.covers(path) for category in self.slimmed)

    def __bool__(self) -> bool:
        return bool(self.dpkg or self.slimmed)


def parse_dpkg_filters(text: str) -> list[tuple[bool, str]]:
    """The path filters of one dpkg configuration file (other options are ignored)."""
    filters = []
    for line in text.splitlines():
        match = _FILTER.match(line.strip())
        if match:
            filters.append((match.group(1) == "path-exclude", match.group(2)))
    return filters


def read_exclusions(read: Callable[[str], bytes | None], paths: Iterable[str]) -> Exclusions:
    """The image's exclusions; ``read`` reads one of its files (None when absent), ``paths``
    are the image's paths (to list ``dpkg.cfg.d``)."""
    prefix = DPKG_CONFIG_DIR + "/"
    names = sorted(
        p[len(prefix) :] for p in paths if p.startswith(prefix) and _DPKG_NAME.fullmatch(p[len(prefix) :]) is not None
    )
    filters: list[tuple[bool, str]] = []
    for config in [*(prefix + name for name in names), DPKG_CONFIG]:
        data = read(config)
        if data is not None:
            filters += parse_dpkg_filters(data.decode("utf-8", "replace"))
    record = read(RECORD)
    slimmed = parse_record(record.decode("utf-8", "replace")) if record is not None else ()
    return Exclusions(tuple(filters), slimmed)
