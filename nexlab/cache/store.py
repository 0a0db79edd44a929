"""Where cache entries live, how they are written (atomically), found, checked, listed and pruned."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexlab.errors import InputError
from nexlab.host import owned, sparse

log = logging.getLogger("nexlab.cache")

#: Bumped whenever what an entry holds, or how it is made, changes: older entries stop matching.
#: 2: the image's CRC-32 instead of its sha256; where its files' content lies (``overlay.FileBlocks``).
FORMAT = 2
ENV = "NEXLAB_CACHE_DIR"
IMAGE = "image.ext4"
META = "entry.json"
#: Suffix of an entry being written; never read, removed once its writer is gone.
TEMPORARY = ".nexlab-tmp"


class CorruptEntryError(Exception):
    """An entry failed one of its digests (removed by whoever found it)."""


def cache_root() -> Path:
    """``$NEXLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/nexlab``, else ``/var/cache/nexlab`` for root
    and ``~/.cache/nexlab`` for a user: outside any source tree, kept across boots."""
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "nexlab"
    if os.geteuid() == 0:
        return Path("/var/cache/nexlab")
    return Path.home() / ".cache" / "nexlab"


@dataclass(frozen=True)
class CacheEntry:
    key: str
    directory: Path
    #: CRC-32 of the image file (``sparse.crc32``), checked on every use: the entry guards
    #: against damage (a disk, a killed writer, a hand edit), not an adversary, who could
    #: rewrite entry.json as easily (the cache is its owner's, 0700), and sha256 of 200 MiB
    #: took as long as the rest of an agent-only rebuild.
    image_crc32: str
    #: Bytes the entry takes on disk (the image is sparse).
    disk_bytes: int
    created: float
    #: When a build last used it (the entry file's mtime).
    used: float
    #: What the build recorded beside the image (its inputs, the init it found...).
    meta: Mapping[str, Any]

    @property
    def image(self) -> Path:
        return self.directory / IMAGE

    @property
    def description(self) -> str:
        return str(self.meta.get("description", ""))


def _self_digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _disk_bytes(directory: Path) -> int:
    """What the entry's files take on disk (the image is sparse; a build may keep more files)."""
    total = 0
    with contextlib.suppress(OSError), os.scandir(directory) as found:
        for item in found:
            total += item.stat(follow_symlinks=False).st_blocks * 512
    return total


class Cache:
    """The entries under ``root`` (``cache_root()`` by default), created 0700 on first write."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root()

    @property
    def entries_dir(self) -> Path:
        return self.root / f"v{FORMAT}"

    def _ensure(self) -> Path:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.entries_dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"cannot create the build cache in {self.root}: {exc.strerror}", hint=f"set {ENV} or use --no-cache"
            ) from None
        return self.entries_dir

    # -- reading -------------------------------------------------------------------------

    def lookup(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` if there is a well-formed one (its image is checked on use:
        ``verify``); a malformed one is removed."""
        directory = self.entries_dir / key
        if not directory.is_dir():
            return None
        try:
            return self._read(directory)
        except CorruptEntryError as exc:
            log.warning("cache entry %s is damaged (%s): removed, the build starts from scratch", key[:12], exc)
            self.remove(directory)
            return None

    def _read(self, directory: Path) -> CacheEntry:
        try:
            info = (directory / META).stat()
            document = json.loads((directory / META).read_text(encoding="utf-8"))
            body, digest = document["entry"], document["sha256"]
            image = (directory / IMAGE).stat()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptEntryError(f"unreadable: {exc}") from None
        if not isinstance(body, dict) or _self_digest(body) != digest:
            raise CorruptEntryError(f"{META} does not match its digest")
        if body.get("key") != directory.name or body.get("format") != FORMAT:
            raise CorruptEntryError("made for another key or format")
        if image.st_size != body.get("image_size"):
            raise CorruptEntryError(f"the image is {image.st_size} bytes, not {body.get('image_size')}")
        return CacheEntry(
            key=directory.name,
            directory=directory,
            image_crc32=str(body["image_crc32"]),
            disk_bytes=_disk_bytes(directory),
            created=float(body.get("created", 0)),
            used=info.st_mtime,
            meta=body.get("meta") or {},
        )

    def verify(self, entry: CacheEntry) -> None:
        """``CorruptEntryError`` unless the image still has the CRC-32 recorded (removes it then)."""
        try:
            actual = sparse.crc32(entry.image)
        except OSError as exc:
            self.remove(entry.directory)
            raise CorruptEntryError(f"unreadable image: {exc}") from None
        if actual != entry.image_crc32:
            self.remove(entry.directory)
            raise CorruptEntryError(f"the image's CRC-32 is {actual}, not {entry.image_crc32}")

    def touch(self, entry: CacheEntry) -> None:
        """Note a use (prune removes the least recently used first)."""
        with contextlib.suppress(OSError):
            os.utime(entry.directory / META)

    def entries(self) -> list[CacheEntry]:
        """Every well-formed entry, least recently used first (a damaged one is removed)."""
        found: list[CacheEntry] = []
        if not self.entries_dir.is_dir():
            return found
        for directory in sorted(self.entries_dir.iterdir()):
            if directory.name.endswith(TEMPORARY) or not directory.is_dir():
                continue
            entry = self.lookup(directory.name)
            if entry is not None:
                found.append(entry)
        return sorted(found, key=lambda e: e.used)

    # -- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[Path]:
        """A new temporary directory for ``key``'s entry: fill it (``commit`` then), else it
        is removed at the end of the block."""
        directory = self._ensure()
        self.remove_stale()
        temporary = directory / f".{key[:16]}.{owned.tag()}{TEMPORARY}"
        temporary.mkdir(mode=0o700)
        try:
            yield temporary
        finally:
            self.remove(temporary)

    def store(self, key: str, image: Path, meta: Mapping[str, Any]) -> CacheEntry:
        """Copy ``image`` into a new entry for ``key`` (replacing any entry there)."""
        with self.writing(key) as temporary:
            sparse.copy(image, temporary / IMAGE)
            return self.commit(key, temporary, meta)

    def commit(self, key: str, temporary: Path, meta: Mapping[str, Any]) -> CacheEntry:
        """Make ``temporary`` (from ``writing``, its ``IMAGE`` written) the entry for ``key``."""
        image = temporary / IMAGE
        body = {
            "format": FORMAT,
            "key": key,
            "image_crc32": sparse.crc32(image),
            "image_size": image.stat().st_size,
            "created": time.time(),
            "meta": dict(meta),
        }
        document = {"entry": body, "sha256": _self_digest(body)}
        (temporary / META).write_text(json.dumps(document, sort_keys=True) + "\n", encoding="utf-8")
        target = self.entries_dir / key
        # Another build may have stored the same key meanwhile: the newest wins, and if a third
        # one renamed its own into place in between, that one stays (it holds the same bytes).
        self.remove(target)
        try:
            os.rename(temporary, target)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
        entry = self.lookup(key)
        if entry is None:
            raise CorruptEntryError(f"the entry {key[:12]} just stored cannot be read back")
        return entry

    # -- removing ------------------------------------------------------------------------

    def remove(self, directory: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(directory)

    def remove_stale(self) -> list[Path]:
        """Temporaries whose writer is gone (a killed build): never an entry, removed."""
        removed: list[Path] = []
        if not self.entries_dir.is_dir():
            return removed
        for path in self.entries_dir.iterdir():
            if not path.name.endswith(TEMPORARY):
                continue
            pid = owned.pid_of_tag(path.name)
            if pid is not None and owned.alive(pid):
                continue
            self.remove(path) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path)
        return removed

    def prune(self, *, max_bytes: int | None = None, older_than: float | None = None) -> list[CacheEntry]:
        """Remove entries unused for ``older_than`` seconds, then the least recently used until
        the rest takes at most ``max_bytes``; the removed ones, oldest first."""
        self.remove_stale()
        entries = self.entries()
        removed: list[CacheEntry] = []
        now = time.time()
        if older_than is not None:
            for entry in entries:
                if now - entry.used > older_than:
                    removed.append(entry)
        kept = [e for e in entries if e not in removed]
        if max_bytes is not None:
            total = sum(e.disk_bytes for e in kept)
            for entry in list(kept):
                if total <= max_bytes:
                    break
                removed.append(entry)
                kept.remove(entry)
                total -= entry.disk_bytes
        for entry in removed:
            self.remove(entry.directory)
        return removed
