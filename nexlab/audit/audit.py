"""``audit(path)``: read an ext2/3/4 image without mounting it and say what is in it.

The steps read like a recipe: walk and hash the image, map paths to packages,
size the budget, run the finding rules. ``e2fsck -fn`` runs in a thread next to
the hashing: it is another process, so it uses the time the hashing leaves.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexlab.audit import findings as rules
from nexlab.audit.budget import Budget, SpaceFacts, budget
from nexlab.audit.fsck import DEFAULT_TIMEOUT as DEFAULT_FSCK_TIMEOUT
from nexlab.audit.fsck import FsckResult, fsck
from nexlab.audit.inventory import FileRecord, canonical_path, record_from_entry, to_dataframe
from nexlab.audit.packages import Package, attribute, packages_frame, read_databases
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


@dataclass(frozen=True)
class Audit(Displayable):
    """What ``audit()`` found. No rendering here: the presenter layer renders it."""

    image: Path
    filesystem: FilesystemInfo
    files: tuple[FileRecord, ...]
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


def _reader(fs: Any, records: Mapping[str, FileRecord], limit: int, notes: list[str]) -> Callable[[str], bytes | None]:
    """Read a file of the image by path, following symlinks only inside the image.

    Reads stop at ``limit`` bytes (a hostile image must not fill our memory);
    a file cut short is noted, since what we parse from it is then partial.
    """

    def read(path: str) -> bytes | None:
        real = canonical_path(records, path)
        if real is None or records[real].type != "file":
            return None
        if records[real].size > limit:
            notes.append(f"{real}: only the first {limit} of {records[real].size} bytes were read")
        data: bytes | None = fs.read_path(real, limit=limit)
        return data

    return read


def _architecture(fs: Any, records: Mapping[str, FileRecord], read: Callable[[str], bytes | None]) -> Architecture:
    """The image's architecture from the first bytes of its boot path, agent and executable files."""

    def head(path: str) -> bytes | None:
        real = canonical_path(records, path)
        if real is None or records[real].type != "file":
            return None
        data: bytes | None = fs.read_path(real, limit=ELF_HEAD)
        return data

    def text(path: str) -> str | None:
        data = read(path)
        return data.decode("utf-8", "surrogateescape") if data is not None else None

    executables = tuple(p for p, r in records.items() if r.type == "file" and r.mode & 0o111)
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
        with progress.step("read", f"walk {image.name}"):
            entries = list(fs.walk())
        hashes: dict[int, str] = {}
        if hash:
            with progress.step("hash", "sha256 of every file"):
                hashes = fs.sha256_files([e for e in entries if e.type == "file"], workers=2)
        bare = {e.path: record_from_entry(e, hashes.get(e.inode), None) for e in entries}
        with progress.step("packages", "apk and dpkg databases"):
            cut: list[str] = []
            parsed, notes = read_databases(_reader(fs, bare, DATABASE_LIMIT, cut))
            packages, owner = attribute(parsed, bare)
            records = {p: dataclasses.replace(r, package=owner[p]) if p in owner else r for p, r in bare.items()}
        with progress.step("architecture", "ELF headers and package architectures"):
            arch = _architecture(fs, records, _reader(fs, records, DATABASE_LIMIT, cut))
        info = fs.info
        facts_read = _reader(fs, records, rules.READ_LIMIT, cut)
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
    files = tuple(records[p] for p in sorted(records))
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
