"""An Audit as a document: findings, where the space goes, the budget and the filesystem, built once."""

from __future__ import annotations

import datetime
import posixpath
from collections import Counter, defaultdict

from nexlab.audit.audit import Audit
from nexlab.audit.budget import directory_sizes, unique_inodes
from nexlab.audit.table import type_counts
from nexlab.report.audit_json import audit_json_dict, audit_json_file, iter_audit_json_file
from nexlab.report.dispatch import document, json_chunks, json_dict, json_text
from nexlab.report.document import (
    Code,
    Document,
    Facts,
    Finding,
    Findings,
    Node,
    Notes,
    Paragraph,
    Section,
    Table,
    Treemap,
)
from nexlab.report.document import Verdict as VerdictLine
from nexlab.sizes import format_size

json_dict.register(Audit)(audit_json_dict)
json_text.register(Audit)(audit_json_file)
json_chunks.register(Audit)(iter_audit_json_file)


def when(seconds: int | None) -> str:
    if not seconds:
        return "never"
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def size(num_bytes: int) -> str:
    return f"{format_size(num_bytes)} ({num_bytes:,} B)"


def counts(audit: Audit) -> str:
    by_type = type_counts(audit.files)
    order = ("file", "dir", "symlink", "char", "block", "fifo", "socket")
    parts = [f"{by_type[t]} {t}{'s' if by_type[t] != 1 else ''}" for t in order if by_type[t]]
    return f"{len(audit.files)} paths: " + ", ".join(parts)


def filesystem_facts(audit: Audit) -> list[tuple[str, str]]:
    fs = audit.filesystem
    used_inodes = fs.inodes_count - fs.free_inodes
    return [
        ("image", str(audit.image)),
        ("type", fs.kind),
        ("architecture", audit.architecture.summary()),
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


def fsck_state(audit: Audit) -> str:
    result = audit.fsck
    if result.clean is True:
        return "clean"
    if result.clean is False:
        return f"ERRORS ({len(result.errors)} lines)"
    return result.note or "not run"


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


def directory_tree(audit: Audit) -> list[Node]:
    """Top-level directories, each with its subdirectories (and loose files) as children."""
    sizes = directory_sizes(audit.files)
    children: dict[str, list[Node]] = defaultdict(list)
    for path, n in sizes.items():
        if path.count("/") == 2:
            children[posixpath.dirname(path)].append(Node(posixpath.basename(path), n, title=path))
    top = []
    for path, n in sizes.items():
        if path != "/" and path.count("/") == 1:
            kids = children.get(path, [])
            loose = n - sum(k.size for k in kids)
            if kids and loose > 0:
                kids.append(Node("(files)", loose, title=f"files directly in {path}"))
            top.append(Node(path, n, kids, title=path))
    # Files directly in "/" and the root directory's own blocks.
    rest = sizes.get("/", 0) - sum(node.size for node in top)
    if rest > 0:
        top.append(Node("/ (files)", rest, title="files directly in /"))
    return top


def package_tree(audit: Audit) -> list[Node]:
    nodes = [Node(p.name, p.size, title=f"{p.name} {p.version} ({p.manager})") for p in audit.packages]
    unowned = audit.budget.unowned_bytes
    if audit.packages and unowned:
        nodes.append(Node("(no package)", unowned, title="files no package database lists"))
    return nodes


def verdict(audit: Audit) -> VerdictLine:
    worst = audit.worst()
    text = f"{len(audit.findings)} finding(s)" + (f", worst: {worst.value}" if worst else "")
    state = "ok" if worst is None else "bad" if worst.rank >= 3 else "warn"
    return VerdictLine(text, state)


@document.register(Audit)
def audit_document(audit: Audit) -> Document:
    b = audit.budget
    sections: list[Section] = [
        verdict(audit),
        Findings(
            "findings",
            [Finding(f.severity.value, f.code, f.message, f.fix, tuple(f.paths)) for f in audit.findings],
        ),
        Treemap("space by directory", "allocated bytes by directory", directory_tree(audit)),
    ]
    if audit.packages:
        sections.append(Treemap("space by package", "allocated bytes by package", package_tree(audit)))
    sections.append(Facts("space", budget_facts(audit)))
    if b.top_directories:
        sections.append(
            Table(
                "top directories",
                ["allocated", "directory"],
                [(format_size(n), Code(p)) for p, n in b.top_directories],
                numeric=[0],
            )
        )
    if audit.packages:
        top = sorted(audit.packages, key=lambda p: (-p.size, p.name))
        sections.append(
            Table(
                "top packages",
                ["package", "version", "manager", "declared", "in this image", "files"],
                [
                    (p.name, p.version, p.manager, format_size(p.declared_size), format_size(p.size), p.files)
                    for p in top
                ],
                numeric=[3, 4, 5],
                limit=25,
            )
        )
    if b.duplicates:
        sections.append(
            Table(
                "duplicate content (not hardlinked)",
                ["copies", "size", "reclaimable", "paths"],
                [
                    (len(g.paths), format_size(g.size), format_size(g.reclaimable), ", ".join(g.paths[:4]))
                    for g in b.duplicates
                ],
                numeric=[0, 1, 2],
                # A million-file image can have thousands of groups: the biggest are what matter.
                limit=100,
            )
        )
    sections.append(Facts("filesystem", filesystem_facts(audit)))
    sections.append(Paragraph(f"e2fsck -fn: {fsck_state(audit)}"))
    sections.append(Notes("warnings", list(audit.warnings)))
    used = b.used_bytes / b.filesystem_bytes if b.filesystem_bytes else 0.0
    return Document(
        title=f"nexlab audit: {audit.image.name}",
        sections=sections,
        cards=[
            ("image", format_size(max(b.image_bytes, b.filesystem_bytes)), None),
            ("used", format_size(b.used_bytes), used),
            ("nex can write", format_size(b.nex_free_bytes), None),
            ("largest workload", format_size(b.largest_workload_bytes), None),
            ("findings", str(len(audit.findings)), None),
        ],
        footer=f"{len(audit.files)} paths, {len(unique_inodes(audit.files))} inodes; "
        f"audited in {audit.seconds:.2f} s by nexlab.",
    )
