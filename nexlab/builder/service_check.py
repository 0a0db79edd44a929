"""After a build: read the result and refuse an image whose agent cannot start.

The audit's rules for the agent and its service (for the image's init) run on
the finished image; a HIGH or worse finding there means the build made
something that would never boot to the agent, so the build fails instead of
leaving it to ``nexlab audit`` or a boot that times out.

``check_service`` reads an image file with nexlab's own ext4 reader.
``service_problem`` reads the same facts from the mounted tree while the mount
build still has it (``nexlab.host.safefs``: no symlink in the image is
followed, no device opened), which costs a directory walk instead of a second
read of the whole image; the mount build raises its answer after e2fsck.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.builder.init import InitKind
from nexlab.errors import AgentServiceError
from nexlab.host import safefs

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

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

    records = tree_records(root)

    def read(path: str) -> bytes | None:
        real = canonical_path(records, path)
        if real is None or records[real].type != "file":
            return None
        with safefs.regular_file_beneath(root, real.lstrip("/")) as fd:
            return _read_limited(fd, rules.READ_LIMIT) if fd is not None else None

    return _problem(_evaluate(records, read), built_for)


def tree_records(root: Path) -> dict[str, FileRecord]:
    """The inventory records (no digests, no xattrs: the service rules read neither) of a tree."""
    from nexlab.audit.inventory import FileRecord
    from nexlab.image.model import TYPES

    records: dict[str, FileRecord] = {}
    for entry in safefs.walk(root, include_root=True):
        info = entry.stat
        kind = TYPES.get(stat.S_IFMT(info.st_mode), "unknown")
        path = "/" + entry.path
        target = os.readlink(entry.name, dir_fd=entry.dir_fd) if kind == "symlink" else None
        records[path] = FileRecord(
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
    return records


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
