"""``slim(tree)``: remove what the chosen categories cover, and leave a record of it in the tree.

It works on a populated tree: the mounted image between populate and unmount
(the mount build, the notebook), or the reproducible build's staging tree before
``mkfs.ext4 -d``. Nothing follows a symlink: the walk is ``safefs``'s (a link is
a leaf, removed as a link, never entered), other filesystems mounted inside are
not entered, and the records are written through real directories only.

The package databases stay truthful the way Debian's own slim images keep
them: the files stay listed by their packages, and
``/etc/dpkg/dpkg.cfg.d/nexlab-slim`` tells dpkg they are left out on purpose
(``path-exclude``/``path-include``), so ``dpkg --verify`` does not report them
and a later ``apt-get install`` does not bring them back. apk has no such
setting: ``/etc/nexlab/slim.json`` records the categories and their rules for
every image, and the audit reads it (``excluded()``) to tell a file left out
on purpose from one that is missing.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nexlab.errors import InputError
from nexlab.host import safefs
from nexlab.slim.categories import CATEGORIES, DEFAULT, Category, categories
from nexlab.slim.result import Saving, SlimResult

#: The record of what was slimmed, in every slimmed image (JSON, sorted keys: reproducible).
RECORD = "/etc/nexlab/slim.json"
RECORD_VERSION = 1
#: dpkg's configuration snippet: the same rules as path-exclude/path-include lines.
DPKG_FILTERS = "/etc/dpkg/dpkg.cfg.d/nexlab-slim"
DPKG_STATUS = "/var/lib/dpkg/status"
APK_DB = "/lib/apk/db/installed"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def slim(
    tree: str | os.PathLike[str] | Any,
    names: str | Iterable[str] = DEFAULT,
    *,
    record: bool = True,
) -> SlimResult:
    """Remove the ``names`` categories (``"docs,man"``, a list, ``"all"``) from ``tree``.

    ``tree`` is a directory or anything with a ``path`` (a ``Mount``). Returns the
    bytes and files saved per category. With ``record`` (the default) the record
    and, when the tree has a dpkg database, dpkg's filters are written; categories
    slimmed before are kept in the record, so slimming twice adds up.
    """
    start = time.monotonic()
    root = Path(getattr(tree, "path", tree))
    chosen = categories(names)
    if not chosen:
        raise InputError("no slim category given", hint=f"for example {','.join(DEFAULT)}")
    if not root.is_dir() or root.is_symlink():
        raise InputError(f"{root} is not a directory to slim")
    savings = _remove(root, chosen)
    managers = tuple(
        name for name, database in (("dpkg", DPKG_STATUS), ("apk", APK_DB)) if _is_regular_file(root, database)
    )
    written: list[str] = []
    made: list[str] = []
    if record:
        recorded = _recorded_categories(root) | {c.name for c in chosen}
        everything = tuple(c for name, c in CATEGORIES.items() if name in recorded)
        written.append(_write(root, RECORD, record_json(everything).encode(), made))
        if "dpkg" in managers:
            filters = dpkg_config(everything)
            if filters:
                written.append(_write(root, DPKG_FILTERS, filters.encode(), made))
    return SlimResult(
        seconds=time.monotonic() - start,
        root=root,
        categories=tuple(c.name for c in chosen),
        savings=savings,
        written=tuple(written),
        managers=managers,
        made_directories=tuple(made),
    )


def record_json(chosen: Iterable[Category]) -> str:
    """``/etc/nexlab/slim.json``: the categories and the rules that decided what went."""
    data = {
        "version": RECORD_VERSION,
        "categories": {c.name: {"directories": list(c.directories), "keep": list(c.keep)} for c in chosen},
    }
    return json.dumps(data, sort_keys=True, indent=2) + "\n"


def dpkg_config(chosen: Iterable[Category]) -> str:
    """The dpkg.cfg.d snippet for ``chosen`` ("" when none of them holds packages' files)."""
    lines = [line for category in chosen for line in category.dpkg_filters()]
    if not lines:
        return ""
    header = [
        "# Written by nexlab slim: these files were removed from the image on purpose;",
        "# dpkg leaves them out of later installs too. The record is /etc/nexlab/slim.json.",
    ]
    return "\n".join([*header, *lines]) + "\n"


def parse_record(text: str) -> tuple[Category, ...]:
    """The categories a record names, with the rules it recorded (a damaged record names none)."""
    try:
        data = json.loads(text)
        recorded = data["categories"]
        return tuple(
            Category(
                name=str(name),
                label=CATEGORIES[name].label if name in CATEGORIES else str(name),
                directories=tuple(str(d) for d in rules["directories"]),
                keep=tuple(str(k) for k in rules.get("keep", ())),
            )
            for name, rules in sorted(recorded.items())
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return ()


def _remove(root: Path, chosen: tuple[Category, ...]) -> tuple[Saving, ...]:
    totals = {c.name: [0, 0, 0, 0] for c in chosen}  # files, bytes, directories, their bytes
    roots = {directory.rstrip("/") for c in chosen for directory in c.directories}
    seen: set[tuple[int, int]] = set()
    for entry in safefs.walk(root):
        path = "/" + entry.path
        category = next((c for c in chosen if c.covers(path)), None)
        if category is None:
            continue
        counts = totals[category.name]
        if entry.is_dir:
            if not category.prune_directories or path in roots:
                continue
            try:
                os.rmdir(entry.name, dir_fd=entry.dir_fd)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    continue  # something kept is inside (a copyright file)
                raise
            counts[2] += 1
            counts[3] += entry.stat.st_blocks * 512
            continue
        os.unlink(entry.name, dir_fd=entry.dir_fd)
        key = (entry.stat.st_dev, entry.stat.st_ino)
        if key not in seen:
            seen.add(key)
            counts[0] += 1
        # The walk stats each entry just before yielding it: a link count of 1 means this
        # unlink freed the blocks (an earlier link to it was removed already, or never existed).
        if entry.stat.st_nlink <= 1:
            counts[1] += entry.stat.st_blocks * 512
    return tuple(Saving(name, *counts) for name, counts in totals.items())


def _is_regular_file(root: Path, path: str) -> bool:
    with safefs.regular_file_beneath(root, path.lstrip("/")) as fd:
        return fd is not None


def _recorded_categories(root: Path) -> set[str]:
    with safefs.regular_file_beneath(root, RECORD.lstrip("/")) as fd:
        if fd is None:
            return set()
        return {c.name for c in parse_record(safefs.read_all(fd).decode("utf-8", "replace")) if c.name in CATEGORIES}


def _write(root: Path, path: str, data: bytes, made: list[str]) -> str:
    """Write ``root/path`` (root-owned when we are root, mode 0644), its directories made 0755,
    never through a link: a link in the way is an error for a directory, replaced for the file."""
    directory, _, name = path.lstrip("/").rpartition("/")
    fd = safefs.open_directory(root)
    reached = ""
    try:
        for part in [p for p in directory.split("/") if p]:
            reached += "/" + part
            new = False
            try:
                info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                os.mkdir(part, 0o755, dir_fd=fd)
                new = True
                made.append(reached)
                info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode):
                raise InputError(f"cannot write {path} into the image: /{directory} is not a directory there")
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
            if new:
                os.fchmod(fd, 0o755)  # whatever the umask
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                raise InputError(f"cannot write {path} into the image: it is a directory there")
            if not stat.S_ISREG(info.st_mode):
                os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=fd)
        try:
            os.fchmod(out, 0o644)
            safefs.rewrite(out, data)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return path
