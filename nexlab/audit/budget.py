"""Where the bytes go, and how much a workload can still use.

Every sum counts an inode once (hardlinks share their blocks); a hardlinked
inode is attributed to its first path in sorted order.
"""

from __future__ import annotations

import math
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from nexlab.audit.inventory import FileRecord
from nexlab.audit.packages import Package
from nexlab.audit.table import FileTable
from nexlab.display import Summarized
from nexlab.sizes import format_size
from nexlab.slim.categories import CATEGORIES

MiB = 1024 * 1024
#: Slack kept free beside a workload binary: the agent writes its logs
#: (nex.log, err.log) into /home/nex when it starts, and a file that size needs
#: extent index blocks of its own. 1 MiB covers both with room to spare.
LOG_SLACK = MiB
#: One ext4 extent maps at most 32768 blocks; one index block holds (block size - 12) / 12 extents.
_EXTENT_BLOCKS = 32768
TOP = 15

#: Paths whose content is rebuilt at run time or only read by people, by category: the
#: slimming categories (``nexlab.slim.categories``), under the audit's names for them.
RECLAIMABLE = {category.label: category for category in CATEGORIES.values()}


@dataclass(frozen=True)
class SpaceFacts:
    """The numbers from the superblock the budget needs (a subset of ``FilesystemInfo``)."""

    image_bytes: int
    size_bytes: int
    block_size: int
    blocks_count: int
    free_blocks: int
    reserved_blocks: int
    overhead_bytes: int
    #: Extent-mapped filesystems: the kernel keeps some clusters back (below).
    extents: bool = True
    #: Blocks per cluster: 1, or 2^n with bigalloc.
    cluster_ratio: int = 1

    @property
    def kernel_reserved_blocks(self) -> int:
        """Blocks ext4 holds back for delayed allocation: 2 % or 4096 clusters, whichever is smaller.

        The kernel (``ext4_calculate_resv_clusters``) takes them out of
        ``statfs``'s available count for everyone, root included, so they are
        not space a workload can use. Counted in clusters, as the kernel does.
        """
        if not self.extents:
            return 0
        ratio = max(self.cluster_ratio, 1)
        return min(self.blocks_count // ratio // 50, 4096) * ratio


@dataclass(frozen=True)
class DuplicateGroup(Summarized):
    sha256: str
    size: int
    paths: tuple[str, ...]
    #: Allocated bytes of all copies but one.
    reclaimable: int

    def summary(self) -> str:
        return (
            f"{len(self.paths)} copies of {format_size(self.size)}, {format_size(self.reclaimable)} reclaimable, "
            f"sha256 {self.sha256[:12]}…"
        )


@dataclass(frozen=True)
class WorkloadFit(Summarized):
    size: int
    fits: bool
    #: Bytes still missing (0 when it fits).
    shortfall: int
    #: The ``nexlab build --size`` that leaves room for it, rounded up to MiB.
    needed_image_size: int

    def summary(self) -> str:
        if self.fits:
            return f"{format_size(self.size)} fits"
        return (
            f"{format_size(self.size)} does not fit: {format_size(self.shortfall)} short, "
            f"needs --size {self.needed_image_size // 2**20}MiB"
        )


@dataclass(frozen=True)
class Budget(Summarized):
    image_bytes: int
    filesystem_bytes: int
    block_size: int
    used_bytes: int
    free_bytes: int
    reserved_bytes: int
    #: Held back by the kernel for delayed allocation (see ``SpaceFacts.kernel_reserved_blocks``).
    kernel_reserved_bytes: int
    overhead_bytes: int
    apparent_bytes: int
    allocated_bytes: int
    #: What nex can write in /tmp: free blocks minus those only root may use and
    #: those the kernel holds back; statvfs's f_bavail on the mounted image.
    nex_free_bytes: int
    margin_bytes: int
    largest_workload_bytes: int
    top_directories: tuple[tuple[str, int], ...]
    top_packages: tuple[tuple[str, int], ...]
    unowned_files: int
    unowned_bytes: int
    duplicate_files: int
    duplicate_bytes: int
    duplicates: tuple[DuplicateGroup, ...]
    reclaimable: tuple[tuple[str, int, int], ...]
    workload: WorkloadFit | None

    def summary(self) -> str:
        return (
            f"{format_size(self.image_bytes)} image, {format_size(self.used_bytes)} used, "
            f"nex can write {format_size(self.nex_free_bytes)}, "
            f"largest workload {format_size(self.largest_workload_bytes)}"
        )

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["top_directories"] = [{"path": p, "bytes": b} for p, b in self.top_directories]
        data["top_packages"] = [{"name": n, "bytes": b} for n, b in self.top_packages]
        data["reclaimable"] = [{"category": c, "bytes": b, "files": n} for c, b, n in self.reclaimable]
        data["duplicates"] = [{**asdict(g), "paths": list(g.paths)} for g in self.duplicates]
        return data


def _table(records: Iterable[FileRecord]) -> FileTable:
    """Any records as columns (an audit's ``files`` already are): every pass below reads columns."""
    return records if isinstance(records, FileTable) else FileTable.from_records(records)


def unique_inodes(records: Iterable[FileRecord]) -> FileTable:
    """Each inode once, at its first path in sorted order (a view sharing the records' columns)."""
    return _table(records).unique()


def directory_sizes(records: Iterable[FileRecord]) -> dict[str, int]:
    """Allocated bytes under each directory, the directory's own blocks included."""
    sizes: dict[str, int] = defaultdict(int)
    unique = unique_inodes(records)
    dirs = unique.kind_codes("dir")
    kinds, allocated, path = unique.type_column(), unique.column("allocated"), unique.path
    for row in unique.rows():
        sizes[path(row) if kinds[row] in dirs else _parent(path(row))] += allocated[row]
    # Each directory's total goes once into its parent, deepest first: a pass per directory,
    # not a climb to "/" per file (that was most of this function at 100k files).
    by_depth: dict[int, list[str]] = defaultdict(list)
    for path_ in sizes:
        by_depth[0 if path_ == "/" else path_.count("/")].append(path_)
    for depth in range(max(by_depth, default=0), 0, -1):
        for path_ in by_depth.get(depth, ()):
            parent = _parent(path_)
            if parent not in sizes:
                by_depth[depth - 1].append(parent)
            sizes[parent] += sizes[path_]
    return dict(sizes)


def _parent(path: str) -> str:
    """posixpath.dirname for the reader's paths (absolute, no empty or trailing components)."""
    return path.rpartition("/")[0] or "/"


def top_directories(sizes: Mapping[str, int], *, depth: int = 3, count: int = TOP) -> list[tuple[str, int]]:
    candidates = [(p, b) for p, b in sizes.items() if p != "/" and p.count("/") <= depth]
    return sorted(candidates, key=lambda item: (-item[1], item[0]))[:count]


def duplicates(records: Iterable[FileRecord]) -> list[DuplicateGroup]:
    """Regular files with the same content in different inodes; hardlinks are already shared."""
    unique = unique_inodes(records)
    files = unique.kind_codes("file")
    kinds, size, allocated = unique.type_column(), unique.column("size"), unique.column("allocated")
    rows, keys = array("I"), array("Q")
    hashed = unique.hashed_column()
    with unique.digest_words() as words:
        for row in unique.rows():
            if kinds[row] in files and size[row] and hashed[row]:
                rows.append(row)
                keys.append(words[row * 4])
    # A byte of counts per bucket of the digests' first 8 bytes: only rows sharing a bucket
    # (every duplicate, and ~1 in 8 others) get their digest into a dict, so a million
    # distinct files never become a million dict entries (~130 bytes each).
    width = 8 * len(rows) + 1
    buckets = bytearray(width)
    for key in keys:
        if buckets[key % width] < 2:
            buckets[key % width] += 1
    copies: dict[bytes, list[int]] = {}
    for row, key in zip(rows, keys, strict=True):
        if buckets[key % width] > 1:
            copies.setdefault(unique.raw_digest(row), []).append(row)
    groups = [
        DuplicateGroup(
            sha256=digest.hex(),
            size=size[same[0]],
            paths=tuple(unique.path(row) for row in same),
            reclaimable=sum(allocated[row] for row in same[1:]),
        )
        for digest, same in copies.items()
        if len(same) > 1
    ]
    return sorted(groups, key=lambda g: (-g.reclaimable, g.paths))


def reclaimable(records: Iterable[FileRecord]) -> list[tuple[str, int, int]]:
    totals = {category: [0, 0] for category in RECLAIMABLE}
    unique = unique_inodes(records)
    dirs = unique.kind_codes("dir")
    kinds, allocated = unique.type_column(), unique.column("allocated")
    for row in unique.rows():
        if kinds[row] in dirs:
            continue
        path = unique.path(row)
        for category, rule in RECLAIMABLE.items():
            if rule.covers(path):
                totals[category][0] += allocated[row]
                totals[category][1] += 1
                break
    return [(category, b, n) for category, (b, n) in totals.items()]


def margin(space: int, block_size: int) -> int:
    """Room kept beside the largest workload: ``LOG_SLACK`` plus its extent index blocks."""
    blocks = max(1, space // block_size)
    per_index = max(1, (block_size - 12) // 12)
    index_blocks = math.ceil(math.ceil(blocks / _EXTENT_BLOCKS) / per_index) + 1
    return LOG_SLACK + index_blocks * block_size


def workload_fit(space: SpaceFacts, nex_free: int, size: int) -> WorkloadFit:
    """Does a workload binary of ``size`` fit, and which ``--size`` would make it fit.

    Growing a filesystem by D bytes gives nex less than D: mkfs reserves the
    same share for root and adds inode tables and bitmaps in proportion, so the
    shortfall is divided by what is left of each new byte.
    """
    need = size + margin(size, space.block_size)
    shortfall = max(0, need - nex_free)
    current = max(space.image_bytes, space.size_bytes)
    if not shortfall:
        return WorkloadFit(size, True, 0, current)
    held_back = space.reserved_blocks + space.kernel_reserved_blocks
    reserved_share = held_back / space.blocks_count if space.blocks_count else 0.07
    overhead_share = space.overhead_bytes / space.size_bytes if space.size_bytes else 0.05
    usable = max(0.5, 1 - reserved_share - overhead_share)
    grow = math.ceil(shortfall / usable)
    return WorkloadFit(size, False, shortfall, math.ceil((current + grow) / MiB) * MiB)


def budget(
    space: SpaceFacts,
    records: Sequence[FileRecord],
    packages: Sequence[Package],
    *,
    workload: int | None = None,
) -> Budget:
    unique = unique_inodes(records)
    bs = space.block_size
    free = space.free_blocks * bs
    reserved = space.reserved_blocks * bs
    nex_free = max(0, (space.free_blocks - space.reserved_blocks - space.kernel_reserved_blocks) * bs)
    keep = margin(nex_free, bs)
    groups = duplicates(unique)
    dirs = unique.kind_codes("dir")
    kinds, size, allocated = unique.type_column(), unique.column("size"), unique.column("allocated")
    unowned = (
        [row for row in unique.rows() if kinds[row] not in dirs and unique.package(row) is None] if packages else []
    )
    return Budget(
        image_bytes=space.image_bytes,
        filesystem_bytes=space.size_bytes,
        block_size=bs,
        used_bytes=(space.blocks_count - space.free_blocks) * bs,
        free_bytes=free,
        reserved_bytes=reserved,
        kernel_reserved_bytes=space.kernel_reserved_blocks * bs,
        overhead_bytes=space.overhead_bytes,
        apparent_bytes=sum(size[row] for row in unique.rows()),
        allocated_bytes=sum(allocated[row] for row in unique.rows()),
        nex_free_bytes=nex_free,
        margin_bytes=keep,
        largest_workload_bytes=max(0, nex_free - keep),
        top_directories=tuple(top_directories(directory_sizes(unique))),
        top_packages=tuple((p.name, p.size) for p in sorted(packages, key=lambda p: (-p.size, p.name))[:TOP] if p.size),
        unowned_files=len(unowned),
        unowned_bytes=sum(allocated[row] for row in unowned),
        duplicate_files=sum(len(g.paths) - 1 for g in groups),
        duplicate_bytes=sum(g.reclaimable for g in groups),
        duplicates=tuple(groups[:TOP]),
        reclaimable=tuple(reclaimable(unique)),
        workload=workload_fit(space, nex_free, workload) if workload is not None else None,
    )
