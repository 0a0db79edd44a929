"""A built image's sha256, computed the first time someone reads it.

Hashing a 200 MiB image is ~0.15 s of CPU (SHA-256 compressions, not I/O: reports/benchmarks.md,
"issue 9 speed"), the largest part of what the mount build did after the seed's recipe would
have ended. So that build hands its plain output's digest back pending: ``BuildResult.sha256``
computes it on first access (``--json``, a notebook's display, build-many, repro), once,
whichever thread asks first; a plain ``nexlab build`` never asks and never waits for it.

It is the digest of the file the build wrote, complete: the identity of the file in place
(device, inode, size, mtime, ctime) is taken once it was renamed over the output and checked
before and after hashing, so a file replaced or changed since (even by a hard link, which
moves ctime) is refused with ``InputError``, never hashed as if it were the build's.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from nexlab.errors import InputError
from nexlab.host import sparse

_Identity = tuple[int, int, int, int, int]


def _identity(info: os.stat_result) -> _Identity:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class PendingDigest:
    """The sha256 of ``path`` as it is now, computed by the first ``value()`` call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity = _identity(os.stat(path, follow_symlinks=False))
        self._lock = threading.Lock()
        self._value: str | None = None

    @property
    def known(self) -> bool:
        """Whether the digest was computed already (reading it then costs nothing)."""
        return self._value is not None

    def value(self) -> str:
        """The digest; the first call hashes the file, every other call (any thread) waits for it."""
        with self._lock:
            if self._value is None:
                self._value = self._hash()
            return self._value

    def _hash(self) -> str:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise self._changed(f"cannot be read any more ({exc.strerror})") from None
        with os.fdopen(fd, "rb") as handle:
            if _identity(os.fstat(fd)) != self._identity:
                raise self._changed("was replaced or changed")
            digest = sparse.sha256_of(handle, self.path)
            if _identity(os.fstat(fd)) != self._identity:
                raise self._changed("changed while it was hashed")
        return digest

    def _changed(self, what: str) -> InputError:
        return InputError(
            f"{self.path} {what} since it was built: its sha256 would not be the build's",
            hint=f"sha256sum {self.path} gives the file's as it is now",
        )

    def __repr__(self) -> str:
        return f"PendingDigest({str(self.path)!r}, {self._value if self._value is not None else 'not computed yet'})"
