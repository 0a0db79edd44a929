"""Scrub a staging tree so two builds from the same inputs hold the same bytes.

What is removed or rewritten follows what mkosi and mmdebstrap do, and what was
measured on debootstrap and apt trees (``notes/reproducible-ext4.md`` §4):
logs, caches and keys written at install time, ``machine-id`` emptied so the
guest makes its own at first boot, ``/etc/shadow``'s last-change day pinned to
the epoch day, and every mtime clamped to the epoch (atime := mtime).

Nothing here follows a symlink: every path is handled with ``lstat``/``unlink``
on the link itself, and nothing outside the staging root is touched.
"""

from __future__ import annotations

import fnmatch
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

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
class ScrubResult:
    seconds: float
    removed: tuple[str, ...] = field(default=())
    emptied: tuple[str, ...] = field(default=())
    shadow_lines: int = 0
    clamped: int = 0
    entries: int = 0


def scrub(root: Path, epoch: int) -> ScrubResult:
    """Remove volatile files under ``root``, pin shadow days, then clamp every time to ``epoch``."""
    start = time.monotonic()
    removed = tuple(_remove_volatile(root))
    emptied = tuple(_empty(root))
    shadow = sum(_pin_shadow(root / name, epoch // 86400) for name in SHADOW_FILES)
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
        for relative in _glob(root, pattern):
            path = root / relative
            # Only files and links: a directory of the same name is left for the user to explain.
            if path.is_symlink() or path.is_file():
                path.unlink()
                removed.append(relative)
    return sorted(removed)


def _glob(root: Path, pattern: str) -> list[str]:
    """Matches of a one-level ``dir/name*`` pattern, without following links out of ``root``."""
    directory, _, name = pattern.rpartition("/")
    base = root / directory if directory else root
    if _escapes(root, base) or not base.is_dir() or base.is_symlink():
        return []
    return sorted(
        f"{directory}/{entry}" if directory else entry for entry in os.listdir(base) if fnmatch.fnmatchcase(entry, name)
    )


def _escapes(root: Path, path: Path) -> bool:
    """True when a parent of ``path`` inside ``root`` is a symlink (it could point at the host)."""
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return True
    return False


def _empty(root: Path) -> list[str]:
    emptied: list[str] = []
    for relative in EMPTIED:
        path = root / relative
        if _escapes(root, path.parent) or path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size:
            with path.open("r+b") as handle:
                handle.truncate(0)
            emptied.append(relative)
    return emptied


def _pin_shadow(path: Path, day: int) -> int:
    """Clamp field 3 (last change, days since 1970) to ``day``; returns the lines changed."""
    if path.is_symlink() or not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines(keepends=True)
    changed = 0
    out: list[str] = []
    for line in lines:
        fields = line.rstrip("\n").split(":")
        if len(fields) >= 3 and fields[2].isdigit() and int(fields[2]) > day:
            fields[2] = str(day)
            line = ":".join(fields) + ("\n" if line.endswith("\n") else "")
            changed += 1
        out.append(line)
    if changed:
        stat = path.stat()
        path.write_text("".join(out), encoding="utf-8", errors="surrogateescape")
        os.chmod(path, stat.st_mode & 0o7777)
    return changed


def clamp_times(root: Path, epoch: int) -> tuple[int, int]:
    """Set every entry's mtime to min(mtime, epoch) and its atime to that mtime.

    Bottom-up, after all edits, because changing a directory's entries moves its
    mtime; ``utime`` itself does not. Returns (entries clamped, entries seen).
    """
    clamped = 0
    entries = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        # os.walk does not descend into links to directories: they are leaves here.
        leaves = [*filenames, *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))]
        for path in [*(os.path.join(dirpath, name) for name in leaves), dirpath]:
            stat = os.lstat(path)
            mtime = min(int(stat.st_mtime), epoch)
            if stat.st_mtime != mtime or stat.st_atime != mtime:
                clamped += int(stat.st_mtime) != mtime
                os.utime(path, (mtime, mtime), follow_symlinks=False)
            entries += 1
    return clamped, entries
