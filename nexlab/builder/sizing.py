"""How big an image must be to hold some content, and ``--size auto``.

The filesystem's own overhead (journal, inode tables, bitmaps) grows with the
image size in steps, so rather than re-derive mke2fs's rules we ask mke2fs: make
the candidate filesystem in a sparse scratch file (a few milliseconds), read its
free blocks and inodes, and grow the candidate until the content fits.

``--size auto`` asks for more than "fits": the audit of the result must show at
least the requested free space (``Budget.nex_free_bytes``: free blocks minus those
only root may use and those the kernel holds back for delayed allocation) and at
most ``STEP`` more. So the candidate grows in 4 KiB blocks, not MiB, and the
inode count is chosen from the content's file count (``mkfs.ext4 -N``) rather than
from a fixed bytes-per-inode ratio, which would give a 40 MiB Alpine image a few
thousand inodes it never uses and a 2 GiB one with many small files too few.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab import tempdirs
from nexlab.builder.allocate import MINIMUM_SIZE
from nexlab.builder.mkfs import MkfsOptions, make_filesystem, superblock_facts
from nexlab.builder.results import SizeResult
from nexlab.errors import InputError
from nexlab.sizes import format_size, parse_size

if TYPE_CHECKING:
    from nexlab.builder.container import FinishedSetup

_MIB = 2**20
_BLOCK = 4096
#: Headroom over the extraction's count (``nexlab.builder.extract``), which is within
#: 0.1 % of what ext4 allocates for a Debian base: where the allocator splits extents
#: and htree directories split their leaves is not known in advance.
CONTENT_MARGIN = 1.10
DEFAULT_OPTIONS = MkfsOptions()

#: ``--size auto``'s promise: the audit shows at least the free space asked for and less
#: than this much more. 1 MiB: the candidate grows by 4 KiB blocks, and the content
#: counts it is sized from are within a few hundred KiB of what ext4 allocates.
STEP = _MIB
#: ``--free``'s default: nex promises room for a "~20 MB" workload binary; 20 MB plus the
#: audit's margin beside it (logs, extent blocks: ``nexlab.audit.budget.margin``) is 20.1 MiB,
#: and the rest (~12 MiB) is what the workload itself may write in /tmp and /home/nex.
DEFAULT_FREE = 32 * _MIB
#: Inodes that exist in every ext4 filesystem before any content: 1-10 reserved, 11 lost+found.
FIRST_INODE = 11
#: New files in the free space get an inode per 16 KiB, the default ratio of a fixed-size build.
FREE_BYTES_PER_INODE = 16384
MIN_FREE_INODES = 256
#: When ``fit`` remakes an image from what the last one measured: the new size moves the
#: journal and block groups, so extents split a few blocks differently.
REMAKE_SLACK = 64 * 1024
#: Over the mount path's count of the setup container (``for_setup``): the count scans the
#: data, and what the extraction then allocates differs by tens of KiB (directory leaves,
#: extent blocks) on Debian and Alpine: half a step covers it with room.
COUNT_SLACK = STEP // 2


def usable(size: int, options: MkfsOptions = DEFAULT_OPTIONS) -> tuple[int, int]:
    """(free bytes, free inodes) of a fresh filesystem of ``size`` bytes made with ``options``."""
    probe = probe_free(size, options)
    return probe.free_bytes, probe.free_inodes


@dataclass(frozen=True)
class Probe:
    """A fresh filesystem's free space, as ``nexlab audit``'s budget counts it."""

    size: int
    blocks_count: int
    #: Free blocks minus those only root may use (``-m``), in bytes.
    free_bytes: int
    #: What nex can write: ``free_bytes`` minus what the kernel holds back (``SpaceFacts``).
    nex_free_bytes: int
    free_inodes: int
    inode_count: int


def probe_free(size: int, options: MkfsOptions = DEFAULT_OPTIONS) -> Probe:
    """``options``' filesystem made in a sparse scratch file of ``size`` bytes, and its free space."""
    with tempdirs.directory("sizing") as scratch:
        image = scratch / "probe.ext4"
        with image.open("wb") as handle:
            handle.truncate(size)
        make_filesystem(image, replace(options, populate_from=None))
        return read_free(image, size)


def read_free(image: Path, size: int) -> Probe:
    """The free space of the filesystem in ``image``, counted as the audit counts it."""
    from nexlab.audit.budget import SpaceFacts  # not at import: parsing `nexlab build` loads no audit

    facts = superblock_facts(image)
    block_size = int(facts["Block size"])
    blocks = int(facts["Block count"])
    free_blocks = int(facts["Free blocks"])
    reserved = int(facts.get("Reserved block count", "0"))
    space = SpaceFacts(
        image_bytes=size,
        size_bytes=blocks * block_size,
        block_size=block_size,
        blocks_count=blocks,
        free_blocks=free_blocks,
        reserved_blocks=reserved,
        overhead_bytes=0,
        extents="extent" in facts.get("Filesystem features", ""),
    )
    nex_free = max(0, free_blocks - reserved - space.kernel_reserved_blocks) * block_size
    return Probe(
        size=size,
        blocks_count=blocks,
        free_bytes=(free_blocks - reserved) * block_size,
        nex_free_bytes=nex_free,
        free_inodes=int(facts["Free inodes"]),
        inode_count=int(facts["Inode count"]),
    )


def size_for_content(content_bytes: int, content_files: int, options: MkfsOptions = DEFAULT_OPTIONS) -> int:
    """The smallest whole number of MiB whose filesystem holds the content with margin."""
    need_bytes = int(content_bytes * CONTENT_MARGIN)
    need_inodes = int(content_files * CONTENT_MARGIN) + 16
    candidate = max(-(-need_bytes // _MIB) * _MIB, 8 * _MIB)
    for _ in range(20):
        free_bytes, free_inodes = usable(candidate, options)
        if free_bytes >= need_bytes and free_inodes >= need_inodes:
            return candidate
        short_bytes = max(0, need_bytes - free_bytes)
        short_inodes = max(0, need_inodes - free_inodes) * options.bytes_per_inode
        candidate += -(-max(short_bytes, short_inodes, _MIB) // _MIB) * _MIB
    return candidate


# --size auto


AUTO = "auto"


def is_auto(size: int | str) -> bool:
    return isinstance(size, str) and size.strip().lower() == AUTO


@dataclass(frozen=True)
class Headroom:
    """What ``--size auto`` leaves free: ``free`` bytes nex can write, and inodes for new files."""

    free: int
    #: The ``--workload`` it was derived from, if any (for the result's text).
    workload: int | None = None

    @classmethod
    def of(cls, free: int | str | None = None, workload: int | str | None = None) -> Headroom:
        """``--free`` and/or ``--workload``: a workload needs its size plus the audit's margin
        beside it (so the audit says it fits); with both, ``free`` is on top of that."""
        from nexlab.audit.budget import margin

        free_bytes = parse_size(free) if free is not None else None
        if workload is None:
            return cls(free_bytes if free_bytes is not None else DEFAULT_FREE)
        workload_bytes = parse_size(workload)
        room = workload_bytes + margin(workload_bytes, _BLOCK)
        return cls(room + (free_bytes or 0), workload_bytes)

    @property
    def inodes(self) -> int:
        return max(MIN_FREE_INODES, self.free // FREE_BYTES_PER_INODE)


def check_auto(size: int | str, free: int | str | None, workload: int | str | None) -> Headroom | None:
    """The headroom of an ``auto`` size, None for a fixed one; ``--free``/``--workload``
    with a fixed size are refused (they only make sense when nexlab picks the size)."""
    if is_auto(size):
        return Headroom.of(free, workload)
    parse_size(size)
    given = [flag for flag, value in (("--free", free), ("--workload", workload)) if value is not None]
    if given:
        raise InputError(
            f"{' and '.join(given)} {'set' if len(given) > 1 else 'sets'} the free space of --size auto, "
            f"but the size is fixed ({size})",
            hint=f"use --size auto {given[0]} …, or drop {given[0]}",
        )
    return None


@dataclass(frozen=True)
class Sizing:
    """The image ``--size auto`` chose, and why."""

    size: int
    inode_count: int
    #: The content it was sized for (ext4 bytes and inodes).
    content_bytes: int
    content_inodes: int
    headroom: Headroom
    #: What nex will be able to write, predicted from the empty filesystem and the content.
    predicted_free: int

    def options(self, base: MkfsOptions = DEFAULT_OPTIONS) -> MkfsOptions:
        return replace(base, inode_count=self.inode_count)

    def describe(self) -> str:
        return (
            f"{self.size} bytes ({format_size(self.size)}) for {format_size(self.content_bytes)} in "
            f"{self.content_inodes} files, {format_size(self.headroom.free)} free, {self.inode_count} inodes"
        )


def choose(
    content_bytes: int,
    content_inodes: int,
    headroom: Headroom,
    options: MkfsOptions = DEFAULT_OPTIONS,
    *,
    slack: int = 0,
) -> Sizing:
    """The smallest size (in 4 KiB blocks) whose fresh filesystem, less ``content_bytes``,
    leaves ``headroom.free`` for nex (plus ``slack`` for the error of the count).

    Grows the candidate by what is missing: the filesystem's overhead only grows with
    its size, so a step never passes the smallest size that works, and the free space
    found is less than one block (plus what one more block group costs) above the need.
    """
    need = content_bytes + headroom.free + slack
    inode_count = FIRST_INODE + content_inodes + headroom.inodes
    sized = replace(options, inode_count=inode_count, populate_from=None)
    candidate = max(-(-need // _BLOCK) * _BLOCK, MINIMUM_SIZE)
    for _ in range(64):
        probe = probe_free(candidate, sized)
        short = need - probe.nex_free_bytes
        if short <= 0 and probe.free_inodes >= content_inodes + headroom.inodes:
            return Sizing(
                size=candidate,
                inode_count=probe.inode_count,
                content_bytes=content_bytes,
                content_inodes=content_inodes,
                headroom=headroom,
                predicted_free=probe.nex_free_bytes - content_bytes,
            )
        candidate += -(-max(short, _BLOCK) // _BLOCK) * _BLOCK
    raise InputError(f"no image size found for {format_size(need)} of content and free space")  # pragma: no cover


def result(sizing: Sizing, seconds: float) -> SizeResult:
    return SizeResult(
        seconds=seconds,
        size=sizing.size,
        inode_count=sizing.inode_count,
        content_bytes=sizing.content_bytes,
        content_files=sizing.content_inodes,
        requested_free=sizing.headroom.free,
        predicted_free=sizing.predicted_free,
        workload=sizing.headroom.workload,
    )


def tree_content(root: Path) -> tuple[int, int]:
    """(bytes, inodes) a staged tree will take in ext4, from its names and sizes only.

    The reproducible path's first guess (``mkfs.ext4 -d`` then measures): holes and
    what each filesystem allocates under the staging tree are not looked at, so the
    guess depends on the tree alone and two runs make the same first image.
    """
    from nexlab.builder.extract import BLOCK, Content
    from nexlab.host import safefs

    content = Content()
    seen: set[int] = set()
    for entry in safefs.walk(root):
        content.add_name(entry.path)
        mode = entry.stat.st_mode
        if stat.S_ISDIR(mode):
            content.directories.setdefault(entry.path, 0)
        elif entry.stat.st_nlink > 1:
            if entry.stat.st_ino in seen:
                continue
            seen.add(entry.stat.st_ino)
        content.inodes += 1
        if stat.S_ISREG(mode):
            content.blocks += -(-entry.stat.st_size // BLOCK)
        elif stat.S_ISLNK(mode) and entry.stat.st_size >= 60:
            content.blocks += 1
    return content.bytes, content.inodes


def fit(
    image: Path,
    headroom: Headroom,
    first: Sizing,
    make: Callable[[int, MkfsOptions], object],
    options: MkfsOptions = DEFAULT_OPTIONS,
    *,
    attempts: int = 4,
    later: int = 0,
) -> tuple[Sizing, Probe]:
    """Make the filesystem with ``make(size, options)`` at ``first``'s size, measure what nex can
    write, and remake it at the size that measurement calls for until the free space is within
    ``STEP`` of the request: each size is a function of the last image, so the same tree gives
    the same sizes (the reproducible path, whose content is only exact once mkfs -d wrote it).
    ``later``: bytes written after the measure (the reproducible path's agent), left room for."""
    sizing = first
    for _ in range(attempts):
        made = replace(options, inode_count=sizing.inode_count)
        make(sizing.size, made)
        probe = read_free(image, sizing.size)
        over = probe.nex_free_bytes - later - headroom.free
        if 0 <= over < STEP:
            return replace(sizing, predicted_free=probe.nex_free_bytes - later), probe
        # What the content really took: the empty filesystem's free space less what is left.
        taken = probe_free(sizing.size, made).nex_free_bytes - probe.nex_free_bytes
        sizing = choose(taken + later, sizing.content_inodes, headroom, options, slack=REMAKE_SLACK)
    raise InputError(
        f"--size auto did not settle within {attempts} attempts ({sizing.describe()})",
        hint="pass a fixed --size",
    )


def for_setup(finished: FinishedSetup, headroom: Headroom) -> SizeResult:
    """``--size auto`` on the mount path, where the image is made after the setup container
    exits: its filesystem streamed once and counted (nothing written, ``extract.count``),
    then the smallest image that holds it and ``headroom``."""
    from nexlab.builder.extract import count
    from nexlab.builder.layers import container_stream

    start = time.monotonic()
    with container_stream(finished) as source:
        content = count(source)
    chosen = choose(content.bytes, content.inodes, headroom, slack=COUNT_SLACK)
    return result(chosen, time.monotonic() - start)
