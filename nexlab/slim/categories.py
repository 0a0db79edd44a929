"""What each slimming category covers: one definition, read by ``slim()``, the audit's
budget (its "reclaimable" list), the dpkg exclusions and the diff's causes.

A path belongs to a category when it lies under one of the category's
directories and matches none of its ``keep`` patterns. Patterns are dpkg's
(``fnmatch`` without ``FNM_PATHNAME``: ``*`` also matches ``/``), so what the
audit calls reclaimable, what ``slim()`` removes and what the
``path-exclude``/``path-include`` lines written into the image keep out of
later ``apt-get install``s are the same set of paths.

Decisions (README, "Slimming"):

- docs keeps ``/usr/share/doc/*/copyright``: Debian policy wants them, and they
  are where the SBOM reads a Debian package's licence. ``/usr/share/common-licenses``
  (the texts those files point to, from base-files) is not a category at all.
- man covers man and info pages; the section directories (man1...) stay: postinsts
  that register a man page alternative fail without them.
- locales keeps the C.UTF-8 locale (``/usr/lib/locale/C.utf8``, libc-bin's):
  programs that set ``LANG=C.UTF-8`` need it and it is 0.4 MiB. English message
  catalogs go with the others: untranslated messages are English already.
- caches keeps ``/var/cache/debconf``: despite the path it is debconf's database
  (the answers given at install time), not a cache. Cache and temporary
  directories themselves stay (apt, man-db expect them, with their owners);
  only what is in them goes.
- logs is not in the default set: a log is evidence, and an image's are small.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from nexlab.errors import InputError


@dataclass(frozen=True)
class Category:
    name: str
    #: The audit's name for it (the budget's ``reclaimable`` rows, a JSON contract).
    label: str
    #: Absolute directories, each ending in "/": the category is what lies below them.
    directories: tuple[str, ...]
    #: dpkg-style globs of paths below ``directories`` that stay.
    keep: tuple[str, ...] = ()
    #: Whether directories left empty are removed too (not for caches and logs, whose
    #: directories programs expect to find, owned as the package made them).
    prune_directories: bool = True
    #: Whether packages install files here that dpkg must be told to leave out (caches and
    #: logs hold no package's files, only directories, which stay).
    dpkg: bool = True
    #: One line for help and reports.
    description: str = ""

    def covers(self, path: str) -> bool:
        """Whether ``path`` (absolute) is this category's: below a directory, not kept."""
        return path.startswith(self.directories) and not self.kept(path)

    def kept(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.keep)

    def dpkg_filters(self) -> tuple[str, ...]:
        """The ``dpkg.cfg`` lines that keep dpkg from unpacking this category again."""
        if not self.dpkg:
            return ()
        lines = [f"path-exclude={directory}*" for directory in self.directories]
        lines += [f"path-include={pattern}" for pattern in self.keep]
        return tuple(lines)


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category(
            "caches",
            "caches",
            ("/var/cache/", "/root/.cache/", "/home/nex/.cache/", "/var/lib/apt/lists/", "/tmp/", "/var/tmp/"),
            keep=("/var/cache/debconf", "/var/cache/debconf/*"),
            prune_directories=False,
            dpkg=False,
            description="package manager caches and indexes, ~/.cache, /tmp and /var/tmp (debconf's database stays)",
        ),
        Category(
            "docs",
            "docs",
            ("/usr/share/doc/", "/usr/share/gtk-doc/"),
            keep=("/usr/share/doc/*/copyright",),
            description="/usr/share/doc and gtk-doc (the copyright files stay)",
        ),
        Category(
            "man",
            "man pages",
            ("/usr/share/man/", "/usr/share/info/"),
            # man1, man8...: a postinst that registers a man page alternative (openjdk's) fails
            # when the section directory is missing, the known trap of Debian's slim images.
            prune_directories=False,
            description="man and info pages (the section directories stay)",
        ),
        Category(
            "locales",
            "locales",
            ("/usr/share/locale/", "/usr/lib/locale/", "/usr/share/i18n/"),
            keep=("/usr/lib/locale/C.utf8", "/usr/lib/locale/C.utf8/*"),
            description="message catalogs, compiled locales and locale sources (C.UTF-8 stays)",
        ),
        Category(
            "logs",
            "logs",
            ("/var/log/",),
            prune_directories=False,
            dpkg=False,
            description="files under /var/log (the directories stay)",
        ),
    )
}

#: What ``--slim`` without a value removes.
DEFAULT = ("docs", "man", "locales", "caches")


def category_of(path: str) -> Category | None:
    """The category ``path`` belongs to, if any (categories do not overlap)."""
    for category in CATEGORIES.values():
        if category.covers(path):
            return category
    return None


def parse_categories(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"docs,man"`` (or a list of names) to the categories in their canonical order.

    ``all`` is every category, ``default`` the default set; an unknown name is a
    ValueError naming the known ones.
    """
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else [str(n).strip() for n in text]
    chosen: set[str] = set()
    for name in names:
        if not name:
            continue
        if name == "all":
            chosen.update(CATEGORIES)
        elif name == "default":
            chosen.update(DEFAULT)
        elif name in CATEGORIES:
            chosen.add(name)
        else:
            known = ", ".join([*CATEGORIES, "all", "default"])
            raise ValueError(f"unknown slim category {name!r} (known: {known})")
    return tuple(name for name in CATEGORIES if name in chosen)


def checked_names(names: str | Iterable[str]) -> tuple[str, ...]:
    """``parse_categories`` for the library: an unknown name is an ``InputError``."""
    try:
        return parse_categories(names)
    except ValueError as exc:
        raise InputError(str(exc), hint="nexlab build --help lists them under --slim") from None


def categories(names: str | Iterable[str]) -> tuple[Category, ...]:
    """The ``Category`` records for ``names``; an unknown name is an ``InputError``."""
    return tuple(CATEGORIES[name] for name in checked_names(names))
