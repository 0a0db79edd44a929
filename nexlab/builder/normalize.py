"""Scrub a staging tree so two builds from the same inputs hold the same bytes.

What is removed or rewritten follows what mkosi and mmdebstrap do, and what was
measured on debootstrap and apt trees (two builds from the same inputs, diffed):
logs, caches and keys written at install time, ``machine-id`` emptied so the
guest makes its own at first boot, ``/etc/shadow``'s last-change day pinned to
the epoch day, and every mtime clamped to the epoch (atime := mtime).

Nothing here follows a symlink: every path is reached from a descriptor of the
staging root through real directories only (``safefs``), so an image whose
``etc`` is a link to a host directory gets nothing of the host rewritten.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from nexlab.display import Summarized
from nexlab.host import safefs

#: Paths (relative, glob patterns) deleted outright: their content depends on
#: when or where the build ran, and the guest recreates what it needs.
VOLATILE_GLOBS = (
    ".dockerenv",
    "etc/ssh/ssh_host_*_key",
    "etc/ssh/ssh_host_*_key.pub",
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/apk/*",
    "var/cache/ldconfig/aux-cache",
    "var/cache/debconf/*-old",
    "var/lib/apt/lists/*_*",
    "var/lib/dpkg/*-old",
    "var/log/apt/*.log",
    "var/log/apt/eipp.log.xz",
    "var/log/alternatives.log",
    "var/log/bootstrap.log",
    "var/log/dpkg.log",
    "var/lib/dbus/machine-id",
    "var/lib/systemd/random-seed",
    "var/lib/urandom/random-seed",
    "etc/*-",
)

#: Emptied rather than deleted: an empty machine-id tells systemd/OpenRC to make
#: one at first boot, where a missing file may not (mmdebstrap does the same).
EMPTIED = ("etc/machine-id",)

#: Password databases whose third field is the day of the last password change.
SHADOW_FILES = ("etc/shadow",)


@dataclass(frozen=True)
class ScrubResult(Summarized):
    seconds: float
    removed: tuple[str, ...] = field(default=())
    emptied: tuple[str, ...] = field(default=())
    shadow_lines: int = 0
    clamped: int = 0
    entries: int = 0

    def summary(self) -> str:
        return f"{len(self.removed)} removed, {len(self.emptied)} emptied, {self.clamped} of {self.entries} clamped"


def scrub(root: Path, epoch: int) -> ScrubResult:
    """Remove volatile files under ``root``, pin shadow days, then clamp every time to ``epoch``."""
    start = time.monotonic()
    removed = tuple(_remove_volatile(root))
    emptied = tuple(_empty(root))
    shadow = sum(_pin_shadow(root, name, epoch // 86400) for name in SHADOW_FILES)
    clamped, entries = clamp_times(root, epoch)
    return ScrubResult(
        seconds=time.monotonic() - start,
        removed=removed,
        emptied=emptied,
        shadow_lines=shadow,
        clamped=clamped,
        entries=entries,
    )


def _remove_volatile(root: Path) -> list[str]:
    removed: list[str] = []
    for pattern in VOLATILE_GLOBS:
        directory, _, glob = pattern.rpartition("/")
        with safefs.directory_beneath(root, directory) as parent:
            if parent is None:
                continue
            for name in sorted(os.listdir(parent)):
                if not fnmatch.fnmatchcase(name, glob):
                    continue
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
                # Only files and links: a directory of the same name is left for the user to explain.
                if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
                    os.unlink(name, dir_fd=parent)
                    removed.append(f"{directory}/{name}" if directory else name)
    return sorted(removed)


def _empty(root: Path) -> list[str]:
    emptied: list[str] = []
    for relative in EMPTIED:
        with safefs.regular_file_beneath(root, relative, os.O_WRONLY) as fd:
            if fd is not None and os.fstat(fd).st_size:
                os.ftruncate(fd, 0)
                emptied.append(relative)
    return emptied


def _pin_shadow(root: Path, relative: str, day: int) -> int:
    """Clamp field 3 (last change, days since 1970) to ``day``; returns the lines changed.

    Rewritten in place through a descriptor opened without following any link on
    the way: if the image made ``etc`` a link to a host directory, nothing is opened.
    """
    with safefs.regular_file_beneath(root, relative, os.O_RDWR) as fd:
        if fd is None:
            return 0
        text = safefs.read_all(fd).decode("utf-8", errors="surrogateescape")
        changed = 0
        out: list[str] = []
        for line in text.splitlines(keepends=True):
            fields = line.rstrip("\n").split(":")
            if len(fields) >= 3 and fields[2].isdigit() and int(fields[2]) > day:
                fields[2] = str(day)
                line = ":".join(fields) + ("\n" if line.endswith("\n") else "")
                changed += 1
            out.append(line)
        if changed:
            safefs.rewrite(fd, "".join(out).encode("utf-8", errors="surrogateescape"))
        return changed


def clamp_times(root: Path, epoch: int) -> tuple[int, int]:
    """Set every entry's mtime to min(mtime, epoch) and its atime to that mtime.

    Bottom-up, after all edits, because changing a directory's entries moves its
    mtime; ``utime`` itself does not. Returns (entries clamped, entries seen).
    """
    clamped = 0
    entries = 0
    for entry in safefs.walk(root, include_root=True):
        mtime = min(int(entry.stat.st_mtime), epoch)
        if entry.stat.st_mtime != mtime or entry.stat.st_atime != mtime:
            clamped += int(entry.stat.st_mtime) != mtime
            os.utime(entry.name, (mtime, mtime), dir_fd=entry.dir_fd, follow_symlinks=False)
        entries += 1
    return clamped, entries
