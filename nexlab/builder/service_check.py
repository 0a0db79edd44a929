"""After a build: read the result and refuse an image whose agent cannot start.

The audit's rules for the agent and its service (for the image's init) run on
the finished image; a HIGH or worse finding there means the build made
something that would never boot to the agent, so the build fails instead of
leaving it to ``nexlab audit`` or a boot that times out.

``check_service`` reads an image file with nexlab's own ext4 reader.
``service_problem`` reads the same facts from the mounted tree while the mount
build still has it (``nexlab.host.safefs``: no symlink in the image is
followed, no device opened): ``MountedRecords`` stats only the paths the rules
ask for (a few dozen), where a walk of the whole tree took ~0.08 s of the
build's critical path; the mount build raises its answer after e2fsck.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.builder.init import InitKind
from nexlab.errors import AgentServiceError
from nexlab.host import safefs

if TYPE_CHECKING:
    from collections.abc import Callable

    from nexlab.audit.findings import Finding
    from nexlab.audit.inventory import FileRecord


def check_service(image: Path, built_for: InitKind) -> None:
    """``AgentServiceError`` (one line) when the agent or its service cannot run in ``image``."""
    from nexlab.audit import findings as rules
    from nexlab.audit.inventory import file_reader, record_from_entry
    from nexlab.image import open_image

    cut: list[str] = []
    with open_image(image) as fs:
        records = {e.path: record_from_entry(e, None, None) for e in fs.walk()}
        found = _evaluate(records, file_reader(fs, records, rules.READ_LIMIT, cut))
    problem = _problem(found, built_for)
    if problem is not None:
        raise problem


def service_problem(root: Path, built_for: InitKind) -> AgentServiceError | None:
    """What ``check_service`` would raise for the image whose root is mounted at ``root``."""
    from nexlab.audit import findings as rules
    from nexlab.audit.inventory import canonical_path

    records = MountedRecords(root)

    def read(path: str) -> bytes | None:
        real = canonical_path(records, path)
        if real is None or records[real].type != "file":
            return None
        with safefs.regular_file_beneath(root, real.lstrip("/")) as fd:
            return _read_limited(fd, rules.READ_LIMIT) if fd is not None else None

    return _problem(_evaluate(records, read), built_for)


def tree_records(root: Path) -> dict[str, FileRecord]:
    """The inventory records (no digests, no xattrs: the service rules read neither) of a tree."""
    records: dict[str, FileRecord] = {}
    for entry in safefs.walk(root, include_root=True):
        path = "/" + entry.path
        records[path] = _record(path, entry.stat, entry.dir_fd, entry.name)
    return records


class MountedRecords(Mapping[str, "FileRecord"]):
    """``tree_records(root)`` made as it is read: a path's record when it is first asked for,
    a directory's subtree for ``under``, the whole walk only when iterated.

    Each path is reached through real directories only (``safefs``), so a symlink in the
    image is a record, never a way out of it; the rules follow links themselves, inside
    the image (``canonical_path``, through ``node``).
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._made: dict[str, FileRecord | None] = {}
        self._all: dict[str, FileRecord] | None = None

    def _lookup(self, path: str) -> FileRecord | None:
        if self._all is not None:
            return self._all.get(path)
        if path not in self._made:
            self._made[path] = self._stat(path)
        return self._made[path]

    def _stat(self, path: str) -> FileRecord | None:
        if not path.startswith("/"):
            return None
        if path == "/":
            return _record("/", os.stat(self._root, follow_symlinks=False), None, "")
        directory, _, name = path.strip("/").rpartition("/")
        try:
            with safefs.directory_beneath(self._root, directory) as parent:
                if parent is None or name in ("", ".", ".."):
                    return None
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
                return _record(path, info, parent, name)
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None

    def __getitem__(self, path: str) -> FileRecord:
        record = self._lookup(path)
        if record is None:
            raise KeyError(path)
        return record

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self._lookup(path) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._everything())

    def __len__(self) -> int:
        return len(self._everything())

    def _everything(self) -> dict[str, FileRecord]:
        if self._all is None:
            self._all = tree_records(self._root)
        return self._all

    def node(self, path: str) -> tuple[str, str | None] | None:
        """``(type, target)`` of ``path``, for ``canonical_path``."""
        record = self._lookup(path)
        return (record.type, record.target) if record is not None else None

    def under(self, prefix: str) -> Iterator[tuple[str, FileRecord]]:
        """``(path, record)`` of the paths that start with ``prefix``: a walk of that directory
        alone when ``prefix`` names one (``/etc/runlevels/``), else a filter of the whole tree."""
        if not prefix.startswith("/") or not prefix.endswith("/") or self._all is not None:
            yield from ((path, r) for path, r in self._everything().items() if path.startswith(prefix))
            return
        base = prefix.rstrip("/")
        for entry in safefs.walk(self._root, beneath=base.lstrip("/")):
            path = f"{base}/{entry.path}"
            record = _record(path, entry.stat, entry.dir_fd, entry.name)
            self._made.setdefault(path, record)
            yield path, record


def _record(path: str, info: os.stat_result, dir_fd: int | None, name: str) -> FileRecord:
    from nexlab.audit.inventory import FileRecord
    from nexlab.image.model import TYPES

    kind = TYPES.get(stat.S_IFMT(info.st_mode), "unknown")
    target = os.readlink(name, dir_fd=dir_fd) if kind == "symlink" and dir_fd is not None else None
    return FileRecord(
        path=path,
        type=kind,
        mode=info.st_mode & 0o7777,
        uid=info.st_uid,
        gid=info.st_gid,
        size=info.st_size,
        allocated=info.st_blocks * 512,
        nlink=info.st_nlink,
        inode=info.st_ino,
        mtime=int(info.st_mtime // 1),
        sha256=None,
        target=target,
    )


def _read_limited(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0 and (chunk := os.read(fd, min(left, 2**20))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _evaluate(records: Mapping[str, FileRecord], read: Callable[[str], bytes | None]) -> list[Finding]:
    from nexlab.audit import findings as rules

    facts = rules.Facts(records=records, read=read)
    return list(rules.evaluate(facts, (rules.agent, rules.agent_service)))


def _problem(found: list[Finding], built_for: InitKind) -> AgentServiceError | None:
    from nexlab.audit import findings as rules

    blocking = [f for f in found if f.severity.rank >= rules.Severity.HIGH.rank]
    if not blocking:
        return None
    first = blocking[0]
    return AgentServiceError(
        f"the image's agent cannot start ({built_for.value} service): {first.message}",
        hint=first.fix,
    )
