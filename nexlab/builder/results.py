"""What each build step returns: plain data, no rendering.

Every result lists its ``facts()`` as (label, value) pairs; the presenter layer
(through ``nexlab.display``) turns those into terminal text and Jupyter HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nexlab.display import Displayable
from nexlab.sizes import format_size


@dataclass(frozen=True)
class StepResult(Displayable):
    seconds: float

    step = "step"

    def facts(self) -> list[tuple[str, str]]:
        return []

    @property
    def log_tail(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class AllocateResult(StepResult):
    path: Path
    size: int
    allocated: int

    step = "allocate"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("file", str(self.path)),
            ("size", f"{self.size} bytes ({format_size(self.size)})"),
            ("on disk", f"{format_size(self.allocated)} (sparse)"),
            ("time", f"{self.seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class MkfsResult(StepResult):
    image: Path
    block_size: int
    inode_size: int
    inode_count: int
    block_count: int
    uuid: str
    label: str
    reserved_percent: float
    features: tuple[str, ...]
    command: tuple[str, ...]

    step = "mkfs"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("image", str(self.image)),
            ("blocks", f"{self.block_count} × {self.block_size} B"),
            ("inodes", f"{self.inode_count} × {self.inode_size} B"),
            ("reserved for root", f"{self.reserved_percent:g} %"),
            ("label / UUID", f"{self.label or '-'} / {self.uuid}"),
            ("features", " ".join(self.features)),
            ("command", " ".join(self.command)),
            ("time", f"{self.seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class PopulateResult(StepResult):
    base_image: str
    base_image_id: str
    agent: Path
    script: Path | None
    service: Path
    used_bytes: int
    free_bytes: int
    files: int
    output_tail: tuple[str, ...] = field(default=())
    #: The init the service was installed for (nexlab.builder.init.InitKind's value).
    init: str = "openrc"

    step = "populate"

    @property
    def log_tail(self) -> tuple[str, ...]:
        return self.output_tail

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("base image", f"{self.base_image} ({self.base_image_id[:19]})"),
            ("agent", str(self.agent)),
            ("service", f"{self.service} ({self.init})"),
            ("script", str(self.script) if self.script else "-"),
            ("files", str(self.files)),
            ("used / free", f"{format_size(self.used_bytes)} / {format_size(self.free_bytes)}"),
            ("time", f"{self.seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class UnmountResult(StepResult):
    image: Path
    fsck_clean: bool
    fsck_report: tuple[str, ...]

    step = "unmount"

    @property
    def log_tail(self) -> tuple[str, ...]:
        return self.fsck_report

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("image", str(self.image)),
            ("e2fsck -fn", "clean" if self.fsck_clean else "ERRORS"),
            ("time", f"{self.seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class CompressResult(StepResult):
    """The ``compress`` step of a ``.gz`` or ``.zst`` output."""

    output: Path
    format: str  # gzip or zstd
    image_bytes: int
    compressed_bytes: int
    #: Of the ext4 image that was compressed, and of the compressed file written.
    image_sha256: str
    sha256: str

    step = "compress"

    def facts(self) -> list[tuple[str, str]]:
        ratio = self.compressed_bytes / max(self.image_bytes, 1)
        return [
            ("output", str(self.output)),
            ("format", self.format),
            ("size", f"{format_size(self.image_bytes)} → {format_size(self.compressed_bytes)} ({ratio:.0%})"),
            ("sha256", self.sha256),
            ("image sha256", self.image_sha256),
            ("time", f"{self.seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class BuildResult(StepResult):
    output: Path
    size: int
    #: Of the output file as written: for a ``.gz``/``.zst`` output, of the compressed file.
    sha256: str
    steps: tuple[StepResult, ...]
    reproducible: bool = False
    manifest: Path | None = None
    #: Of the ext4 image (for a compressed output, of what it decompresses to); "" when unknown.
    image_sha256: str = ""
    #: Of the compressed artifact (``.gz``, ``.zst``), None for an uncompressed output.
    compressed_sha256: str | None = None

    def __post_init__(self) -> None:
        if not self.image_sha256 and self.compressed_sha256 is None:
            object.__setattr__(self, "image_sha256", self.sha256)  # an uncompressed output is the image

    step = "build"

    def facts(self) -> list[tuple[str, str]]:
        facts = [
            ("output", str(self.output)),
            ("size", f"{self.size} bytes ({format_size(self.size)})"),
            ("sha256", self.sha256),
        ]
        if self.compressed_sha256 is not None:
            facts.append(("image sha256", f"{self.image_sha256} (uncompressed)"))
        facts += [
            ("mode", "reproducible (mkfs.ext4 -d)" if self.reproducible else "mount + container"),
        ]
        if self.manifest:
            facts.append(("manifest", str(self.manifest)))
        facts.append(("steps", ", ".join(f"{s.step} {s.seconds:.2f} s" for s in self.steps)))
        facts.append(("time", f"{self.seconds:.2f} s"))
        return facts
