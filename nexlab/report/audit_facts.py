"""The labelled facts of an Audit that every presenter shows, computed once here."""

from __future__ import annotations

import datetime
from collections import Counter
from typing import TYPE_CHECKING

from nexlab.sizes import format_size

if TYPE_CHECKING:
    from nexlab.audit.audit import Audit


def when(seconds: int | None) -> str:
    if not seconds:
        return "never"
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def size(num_bytes: int) -> str:
    return f"{format_size(num_bytes)} ({num_bytes:,} B)"


def counts(audit: Audit) -> str:
    by_type = Counter(r.type for r in audit.files)
    order = ("file", "dir", "symlink", "char", "block", "fifo", "socket")
    parts = [f"{by_type[t]} {t}{'s' if by_type[t] != 1 else ''}" for t in order if by_type[t]]
    return f"{len(audit.files)} paths: " + ", ".join(parts)


def filesystem_facts(audit: Audit) -> list[tuple[str, str]]:
    fs = audit.filesystem
    used_inodes = fs.inodes_count - fs.free_inodes
    return [
        ("image", str(audit.image)),
        ("type", fs.kind),
        ("size", size(fs.size_bytes)),
        ("block size", f"{fs.block_size} B"),
        ("blocks", f"{fs.blocks_count} total, {fs.free_blocks} free, {fs.reserved_blocks} reserved for root"),
        ("inodes", f"{fs.inodes_count} total, {used_inodes} used, {fs.free_inodes} free, {fs.inode_size} B each"),
        ("overhead", f"{size(fs.overhead_bytes)} (journal {format_size(fs.journal_bytes)}, inode tables, bitmaps)"),
        ("features", " ".join(sorted(fs.features))),
        ("UUID", fs.uuid),
        ("label", fs.label or "-"),
        ("state", fs.state + (", journal needs recovery" if fs.needs_recovery else "")),
        ("created", when(fs.created)),
        ("last mount", when(fs.last_mount)),
        ("last write", when(fs.last_write)),
    ]


def budget_facts(audit: Audit) -> list[tuple[str, str]]:
    b = audit.budget
    facts = [
        ("content", counts(audit)),
        ("apparent / allocated", f"{format_size(b.apparent_bytes)} / {format_size(b.allocated_bytes)}"),
        (
            "used / free",
            f"{format_size(b.used_bytes)} used, {format_size(b.free_bytes)} free "
            f"({format_size(b.reserved_bytes)} reserved for root, "
            f"{format_size(b.kernel_reserved_bytes)} held back by the kernel)",
        ),
        ("filesystem overhead", format_size(b.overhead_bytes)),
        ("nex can write (/tmp)", size(b.nex_free_bytes)),
        ("largest workload binary", f"{size(b.largest_workload_bytes)} (keeps {format_size(b.margin_bytes)} margin)"),
    ]
    if audit.hashed:
        facts.append(
            ("duplicate content", f"{b.duplicate_files} extra copies, {format_size(b.duplicate_bytes)} reclaimable")
        )
    else:
        facts.append(("duplicate content", "not checked (--no-hash)"))
    reclaim = ", ".join(f"{category} {format_size(n)}" for category, n, _files in b.reclaimable if n)
    facts.append(("reclaimable", reclaim or "nothing"))
    if audit.packages:
        managers = Counter(p.manager for p in audit.packages)
        facts.append(("packages", ", ".join(f"{n} {m}" for m, n in sorted(managers.items()))))
        facts.append(("files of no package", f"{b.unowned_files} ({format_size(b.unowned_bytes)})"))
    if b.workload is not None:
        facts.append(("workload", workload_verdict(audit)))
    return facts


def workload_verdict(audit: Audit) -> str:
    fit = audit.budget.workload
    if fit is None:
        return ""
    if fit.fits:
        return f"a {format_size(fit.size)} binary fits"
    return (
        f"a {format_size(fit.size)} binary does NOT fit ({format_size(fit.shortfall)} short): "
        f"build with --size {fit.needed_image_size // (1024 * 1024)}MiB"
    )
