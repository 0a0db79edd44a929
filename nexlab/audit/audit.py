"""``audit(path)``: read an ext2/3/4 image without mounting it and say what is in it.

The steps read like a recipe: walk and hash the image, map paths to packages,
size the budget, run the finding rules. ``e2fsck -fn`` runs in a thread next to
the hashing: it is another process, so it uses the time the hashing leaves.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexlab.audit import findings as rules
from nexlab.audit.budget import Budget, SpaceFacts, budget
from nexlab.audit.fsck import DEFAULT_TIMEOUT as DEFAULT_FSCK_TIMEOUT
from nexlab.audit.fsck import FsckResult, fsck
from nexlab.audit.inventory import FileRecord, canonical_path, file_reader, to_dataframe
from nexlab.audit.packages import Package, attribute, packages_frame, read_databases
from nexlab.audit.table import FileTable, TableBuilder
from nexlab.display import Displayable
from nexlab.errors import InputError
from nexlab.image.elf import HEAD as ELF_HEAD
from nexlab.image.elf import Architecture, architecture
from nexlab.progress import Progress, or_logging
from nexlab.sizes import format_size, parse_size

if TYPE_CHECKING:
    import pandas as pd

    from nexlab.image import FilesystemInfo

#: Version of the JSON contract (README.md, "JSON contracts").
JSON_VERSION = 2
#: Package databases can be large (Debian's status is ~1 MB on a desktop); a
#: hostile image still must not make us read gigabytes into memory.
DATABASE_LIMIT = 64 << 20
#: Inodes hashed per call of the reader: its results for that many stay small (~3 MB).
HASH_CHUNK = 1 << 14


@dataclass(frozen=True)
class Audit(Displayable):
    """What ``audit()`` found. No rendering here: the presenter layer renders it."""

    image: Path
    filesystem: FilesystemInfo
    #: Sorted by path; a ``FileTable`` (columns, a record made per access) from ``audit()``.
    files: Sequence[FileRecord]
    packages: tuple[Package, ...]
    budget: Budget
    findings: tuple[rules.Finding, ...]
    warnings: tuple[str, ...]
    fsck: FsckResult
    hashed: bool
    seconds: float
    #: From the ELF headers of its boot path, agent and executables, and the package database.
    architecture: Architecture = dataclasses.field(default_factory=lambda: Architecture(None))

    def summary(self) -> str:
        worst = self.worst()
        found = f"{len(self.findings)} findings" + (f" (worst {worst.value})" if worst else "")
        return (
            f"{self.image.name}: {len(self.files)} files, {format_size(self.budget.allocated_bytes)}, "
            f"{len(self.packages)} packages, {self.architecture.name or 'architecture unknown'}, {found}"
        )

    @functools.cached_property
    def inventory(self) -> pd.DataFrame:
        """One row per path, indexed by path (pandas is imported on first use; columns: README)."""
        return to_dataframe(self.files)

    @functools.cached_property
    def packages_frame(self) -> pd.DataFrame:
        """``packages`` as a DataFrame: one row per package, largest first, indexed by name."""
        return packages_frame(self.packages)

    @functools.cached_property
    def findings_frame(self) -> pd.DataFrame:
        """``findings`` as a DataFrame, worst first; ``severity`` is an ordered category."""
        return rules.findings_frame(self.findings)

    def worst(self) -> rules.Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def filesystem_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self.filesystem)
        data["features"] = sorted(self.filesystem.features)
        return data


def check_image_path(path: str | os.PathLike[str]) -> Path:
    image = Path(path)
    if not image.exists():
        raise InputError(f"{image}: no such file")
    if image.is_dir():
        raise InputError(f"{image} is a directory, not an ext4 image")
    if not os.access(image, os.R_OK):
        raise InputError(f"{image}: permission denied")
    return image


def _hash_files(fs: Any, builder: TableBuilder) -> None:
    """The sha256 of every regular file into the builder's digest column, each inode once.

    The reader hashes ``HASH_CHUNK`` inodes per call, so its answer (a dict of hex
    strings) never holds a million-file image at once.
    """
    inode = builder.columns["inode"]
    paths = builder.paths

    names: dict[int, str] = {}
    # The reader's two hashing threads may both warn first: one builds the map while the
    # other waits, never reading it half made (that named a file "inode N").
    naming = threading.Lock()

    def name(ino: int) -> str | None:
        # Only for warnings: the first path of the inode in the walk's order, as before. The
        # map is made at the first warning (a hostile image can have thousands of them).
        with naming:
            if not names:
                for row in range(len(paths)):
                    names.setdefault(inode[row], paths[row])
        return names.get(ino)

    chunk_rows: list[int] = []
    chunk_inodes: list[int] = []

    def flush() -> None:
        digests: dict[int, str] = fs.sha256_inodes(chunk_inodes, workers=2, name=name)
        for row in chunk_rows:
            digest = digests.get(inode[row])
            if digest is not None:
                builder.set_digest(row, bytes.fromhex(digest))
        chunk_rows.clear()
        chunk_inodes.clear()

    for row in builder.file_rows_by_inode():
        number = inode[row]
        if not chunk_inodes or chunk_inodes[-1] != number:
            if len(chunk_inodes) >= HASH_CHUNK:
                flush()
            chunk_inodes.append(number)
        chunk_rows.append(row)
    if chunk_inodes:
        flush()


def _architecture(fs: Any, table: FileTable, read: Callable[[str], bytes | None]) -> Architecture:
    """The image's architecture from the first bytes of its boot path, agent and executable files."""
    records = table.by_path()

    def head(path: str) -> bytes | None:
        real = canonical_path(records, path)
        if real is None or records[real].type != "file":
            return None
        data: bytes | None = fs.read_path(real, limit=ELF_HEAD)
        return data

    def text(path: str) -> str | None:
        data = read(path)
        return data.decode("utf-8", "surrogateescape") if data is not None else None

    executables = tuple(table.path(row) for row in table.select(("file",), 0o111))
    return architecture(head, executables, text)


def audit(
    path: str | os.PathLike[str],
    *,
    workload: int | str | None = None,
    hash: bool = True,
    fsck_check: bool = True,
    fsck_timeout: float = DEFAULT_FSCK_TIMEOUT,
    progress: Progress | None = None,
) -> Audit:
    """Audit the ext2/3/4 image at ``path``: inventory, packages, budget and findings.

    Nothing is mounted and nothing needs root. ``workload`` (bytes or "64MiB")
    asks whether a binary that big fits. ``hash=False`` skips the sha256 of
    every file (faster; no duplicate detection, ``sha256`` is null).
    ``fsck_timeout`` bounds ``e2fsck -fn`` (seconds); a check stopped there is
    the finding ``fsck-unfinished``.
    """
    from nexlab.image import open_image
    from nexlab.image.compressed import plain_image

    start = time.monotonic()
    progress = or_logging(progress)
    image = check_image_path(path)
    workload_bytes = parse_size(workload) if workload is not None else None
    # A .gz or .zst image (what `nexlab build -o rootfs.ext4.gz` writes) is read from a
    # sparse decompressed copy; the report still names the file the user gave.
    with (
        plain_image(image, progress=progress) as readable,
        ThreadPoolExecutor(max_workers=1) as pool,
        open_image(readable) as fs,
    ):
        checking = pool.submit(fsck, readable, timeout=fsck_timeout) if fsck_check else None
        # The walk goes straight into columns: no list of entries, no dict of records.
        builder = TableBuilder()
        with progress.step("read", f"walk {image.name}"):
            builder.add(fs.walk())
        if hash:
            with progress.step("hash", "sha256 of every file"):
                _hash_files(fs, builder)
        table = builder.build()
        records = table.by_path()
        with progress.step("packages", "apk and dpkg databases"):
            cut: list[str] = []
            parsed, notes = read_databases(file_reader(fs, records, DATABASE_LIMIT, cut))
            packages, owner = attribute(parsed, records)
            if owner:
                table = table.with_packages(owner)
                records = table.by_path()
        with progress.step("architecture", "ELF headers and package architectures"):
            arch = _architecture(fs, table, file_reader(fs, records, DATABASE_LIMIT, cut))
        info = fs.info
        facts_read = file_reader(fs, records, rules.READ_LIMIT, cut)
        fsck_result = checking.result() if checking else FsckResult(None, None, (), note="e2fsck not requested")
        facts = rules.Facts(
            records=records,
            read=facts_read,
            inode_size=info.inode_size,
            fsck=fsck_result if fsck_check else None,
            needs_recovery=info.needs_recovery,
            architecture=arch,
        )
        findings = rules.evaluate(facts)
        warnings = [*fs.warnings, *notes, *sorted(set(cut))]
    files = table
    space = SpaceFacts(
        image_bytes=info.image_bytes,
        size_bytes=info.size_bytes,
        block_size=info.block_size,
        blocks_count=info.blocks_count,
        free_blocks=info.free_blocks,
        reserved_blocks=info.reserved_blocks,
        overhead_bytes=info.overhead_bytes,
        extents="extent" in info.features,
        cluster_ratio=max(info.cluster_size // info.block_size, 1),
    )
    return Audit(
        image=image,
        filesystem=info,
        files=files,
        packages=tuple(packages),
        budget=budget(space, files, packages, workload=workload_bytes),
        findings=tuple(findings),
        warnings=tuple(warnings),
        fsck=fsck_result,
        hashed=hash,
        seconds=time.monotonic() - start,
        architecture=arch,
    )
