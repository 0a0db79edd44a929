"""What each build step returns: plain data, no rendering.

Every result lists its ``facts()`` as (label, value) pairs; the presenter layer
(through ``nexlab.display``) turns those into terminal text and Jupyter HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nexlab.builder.digest import PendingDigest
from nexlab.display import Displayable
from nexlab.sizes import format_size
from nexlab.slim.result import SlimResult


@dataclass(frozen=True)
class StepResult(Displayable):
    seconds: float

    step = "step"

    def facts(self) -> list[tuple[str, str]]:
        return []

    def summary(self) -> str:
        return f"{self.seconds:.2f} s"

    @property
    def log_tail(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class AllocateResult(StepResult):
    path: Path
    size: int
    allocated: int

    step = "allocate"

    def summary(self) -> str:
        return f"{self.path.name}: {format_size(self.size)} ({format_size(self.allocated)} on disk)"

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

    def summary(self) -> str:
        return (
            f"{self.image.name}: {self.block_count} × {self.block_size} B blocks, "
            f"{self.inode_count} × {self.inode_size} B inodes, {self.reserved_percent:g} % reserved"
        )

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

    def summary(self) -> str:
        return (
            f"{self.base_image} ({self.init}): {self.files} files, {format_size(self.used_bytes)} used, "
            f"{format_size(self.free_bytes)} free"
        )

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

    def summary(self) -> str:
        return f"{self.image.name}: e2fsck -fn {'clean' if self.fsck_clean else 'ERRORS'}"

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

    def summary(self) -> str:
        return (
            f"{self.output.name} ({self.format}): {format_size(self.image_bytes)} → "
            f"{format_size(self.compressed_bytes)}, sha256 {self.sha256[:16]}…"
        )

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


class _Digest:
    """A ``str`` field that may be given a ``PendingDigest``: reading it gives the digest,
    computed then (a descriptor-typed dataclass field; the value lives in ``_<name>``).

    Without ``default`` the field is required, as a plain field would be.
    """

    def __init__(self, *, default: str | None = None) -> None:
        self._default = default
        self._slot = ""

    @staticmethod
    def slot(name: str) -> str:
        return f"_{name}"

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = self.slot(name)

    def __get__(self, instance: object | None, owner: type | None = None) -> str:
        if instance is None:
            if self._default is None:
                raise AttributeError(self._slot)  # dataclasses: no default, the field is required
            return self._default
        stored = instance.__dict__[self._slot]
        return stored.value() if isinstance(stored, PendingDigest) else str(stored)

    def __set__(self, instance: object, value: str | PendingDigest) -> None:
        # The frozen dataclass' __init__ sets fields through object.__setattr__, which calls this.
        instance.__dict__[self._slot] = value


@dataclass(frozen=True)
class BuildResult(StepResult):
    output: Path
    size: int
    steps: tuple[StepResult | SlimResult, ...]
    #: Of the output file as written: for a ``.gz``/``.zst`` output, of the compressed file. The
    #: mount path's plain output gives a ``PendingDigest``: computed when first read.
    sha256: _Digest = _Digest()
    reproducible: bool = False
    manifest: Path | None = None
    #: The slimming categories removed (``nexlab build --slim``).
    slim: tuple[str, ...] = ()
    #: Of the ext4 image (for a compressed output, of what it decompresses to); "" when unknown.
    image_sha256: _Digest = _Digest(default="")
    #: Of the compressed artifact (``.gz``, ``.zst``), None for an uncompressed output.
    compressed_sha256: str | None = None

    def __post_init__(self) -> None:
        if not self.__dict__[_Digest.slot("image_sha256")] and self.compressed_sha256 is None:
            # An uncompressed output is the image: the same digest, pending or not.
            self.__dict__[_Digest.slot("image_sha256")] = self.__dict__[_Digest.slot("sha256")]

    @property
    def sha256_known(self) -> bool:
        """Whether ``sha256`` is known without hashing the output (false only for a mount
        build's plain output nobody read the digest of yet)."""
        stored = self.__dict__[_Digest.slot("sha256")]
        return not isinstance(stored, PendingDigest) or stored.known

    step = "build"

    def summary(self) -> str:
        mode = "reproducible" if self.reproducible else "mount"
        return (
            f"{self.output.name}: {format_size(self.size)}, sha256 {self.sha256[:16]}…, {mode}, "
            f"{len(self.steps)} steps in {self.seconds:.1f} s"
        )

    def facts(self, *, digest: bool = True) -> list[tuple[str, str]]:
        """``digest=False`` leaves a digest nobody computed yet out instead of computing it."""
        shown = self.sha256 if digest or self.sha256_known else "not computed (nexlab build --json prints it)"
        facts = [
            ("output", str(self.output)),
            ("size", f"{self.size} bytes ({format_size(self.size)})"),
            ("sha256", shown),
        ]
        if self.compressed_sha256 is not None:
            facts.append(("image sha256", f"{self.image_sha256} (uncompressed)"))
        facts += [
            ("mode", "reproducible (mkfs.ext4 -d)" if self.reproducible else "mount + container"),
        ]
        if self.manifest:
            facts.append(("manifest", str(self.manifest)))
        if self.slim:
            facts.append(("slimmed", self._slimmed()))
        facts.append(("steps", ", ".join(f"{s.step} {s.seconds:.2f} s" for s in self.steps)))
        facts.append(("time", f"{self.seconds:.2f} s"))
        return facts

    def _slimmed(self) -> str:
        slimmed = next((s for s in self.steps if isinstance(s, SlimResult)), None)
        if slimmed is None:
            return ", ".join(self.slim)
        parts = [f"{s.category} {format_size(s.saved)} ({s.files} files)" for s in slimmed.savings]
        return ", ".join(parts) + f"; {format_size(slimmed.bytes)} saved"


@dataclass(frozen=True)
class SizeResult(StepResult):
    """``--size auto``: the size chosen for the content and the free space asked for."""

    size: int
    inode_count: int
    content_bytes: int
    content_files: int
    requested_free: int
    predicted_free: int
    workload: int | None = None

    step = "size"

    def summary(self) -> str:
        return (
            f"{format_size(self.size)} for {format_size(self.content_bytes)} in {self.content_files} files, "
            f"{format_size(self.predicted_free)} free (asked {format_size(self.requested_free)})"
        )

    def facts(self) -> list[tuple[str, str]]:
        asked = format_size(self.requested_free)
        if self.workload is not None:
            asked += f" (a {format_size(self.workload)} workload and its margin)"
        return [
            ("size", f"{self.size} bytes ({format_size(self.size)})"),
            ("content", f"{format_size(self.content_bytes)} in {self.content_files} files"),
            ("free asked", asked),
            ("free for nex", f"{format_size(self.predicted_free)} (predicted)"),
            ("inodes", str(self.inode_count)),
            ("time", f"{self.seconds:.2f} s"),
        ]
