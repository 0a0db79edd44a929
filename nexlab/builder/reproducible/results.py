"""What each step of the reproducible build reports (the mount path's own are in ``builder.results``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nexlab.builder.results import StepResult
from nexlab.sizes import format_size
from nexlab.times import iso_utc


@dataclass(frozen=True)
class StagingResult(StepResult):
    base_image: str
    base_image_id: str
    directory: Path
    entries: int
    bytes: int
    output_tail: tuple[str, ...] = ()

    step = "stage"

    def summary(self) -> str:
        return f"{self.base_image}: {self.entries} entries, {format_size(self.bytes)}"

    @property
    def log_tail(self) -> tuple[str, ...]:
        return self.output_tail

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("base image", f"{self.base_image} ({self.base_image_id[:19]})"),
            ("staging tree", f"{self.entries} entries, {format_size(self.bytes)}"),
            ("time", f"{self.seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class NormalizeResult(StepResult):
    epoch: int
    removed: tuple[str, ...]
    emptied: tuple[str, ...]
    shadow_lines: int
    clamped: int
    entries: int

    step = "normalize"

    def summary(self) -> str:
        return f"epoch {self.epoch}: {len(self.removed)} removed, {len(self.emptied)} emptied, {self.clamped} clamped"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("epoch", f"{self.epoch} ({iso_utc(self.epoch)})"),
            ("removed", ", ".join(self.removed) or "-"),
            ("emptied", ", ".join(self.emptied) or "-"),
            ("shadow days pinned", str(self.shadow_lines)),
            ("mtimes clamped", f"{self.clamped} of {self.entries}"),
            ("time", f"{self.seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class TimesResult(StepResult):
    inodes: int
    fsck_clean: bool
    #: Inodes whose owner, mode and xattrs came from the container (builds by a normal user).
    owners: int = 0

    step = "times"

    def summary(self) -> str:
        return f"{self.inodes} inodes pinned, e2fsck -fn {'clean' if self.fsck_clean else 'ERRORS'}"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("inodes pinned", f"{self.inodes} (ctime, atime)"),
            ("owners restored", f"{self.owners} inodes (uid, gid, mode, xattrs)" if self.owners else "-"),
            ("e2fsck -fn", "clean" if self.fsck_clean else "ERRORS"),
            ("time", f"{self.seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class CacheResult(StepResult):
    """The build cache's part: an entry stored (a clean build) or used (an agent-only rebuild)."""

    key: str
    hit: bool
    #: Bytes the entry takes on disk.
    bytes: int

    step = "cache"

    def summary(self) -> str:
        return f"{'used' if self.hit else 'stored'} entry {self.key[:12]}, {format_size(self.bytes)} on disk"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("cache", f"{'used' if self.hit else 'stored'} entry {self.key[:12]} ({format_size(self.bytes)} on disk)"),
            ("time", f"{self.seconds:.2f} s"),
        ]
