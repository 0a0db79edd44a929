"""The HTML report of an Audit: one self-contained file with treemaps, findings and facts."""

from __future__ import annotations

import os
import posixpath
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.audit.budget import directory_sizes, unique_inodes
from nexlab.report.audit_facts import budget_facts, filesystem_facts
from nexlab.report.html_common import Node, bar, esc, facts_table, fragment, page, table, treemap_svg
from nexlab.sizes import format_size

if TYPE_CHECKING:
    from nexlab.audit.audit import Audit

SHOWN_PATHS = 20


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


def _findings(audit: Audit) -> str:
    if not audit.findings:
        return "<p class='ok'>No findings.</p>"
    rows = []
    for f in audit.findings:
        paths = ""
        if f.paths:
            items = "".join(f"<li><code>{esc(p)}</code></li>" for p in f.paths[:SHOWN_PATHS])
            more = len(f.paths) - SHOWN_PATHS
            if more > 0:
                items += f"<li>… and {more} more (see the JSON)</li>"
            paths = f"<details><summary>{len(f.paths)} path(s)</summary><ul>{items}</ul></details>"
        rows.append(
            f"<tr><td><span class='sev sev-{esc(f.severity.value)}'>{esc(f.severity.value)}</span></td>"
            f"<td><code>{esc(f.code)}</code></td><td>{esc(f.message)}{paths}</td><td>{esc(f.fix)}</td></tr>"
        )
    head = "<tr><th>severity</th><th>code</th><th>finding</th><th>fix</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _cards(audit: Audit) -> str:
    b = audit.budget
    used = b.used_bytes / b.filesystem_bytes if b.filesystem_bytes else 0
    cards = [
        ("image", format_size(max(b.image_bytes, b.filesystem_bytes))),
        ("used", f"{format_size(b.used_bytes)}<br>{bar(used, width=110)}"),
        ("nex can write", format_size(b.nex_free_bytes)),
        ("largest workload", format_size(b.largest_workload_bytes)),
        ("findings", str(len(audit.findings))),
    ]
    # The bar is our own markup; every other value is escaped.
    return (
        "<div class='cards'>"
        + "".join(
            f"<div class='card'>{esc(label)}<b>{value if label == 'used' else esc(value)}</b></div>"
            for label, value in cards
        )
        + "</div>"
    )


def audit_body(audit: Audit) -> str:
    b = audit.budget
    parts = [
        f"<h1>nexlab audit: <code>{esc(audit.image.name)}</code></h1>",
        _cards(audit),
        "<h2>Findings</h2>",
        _findings(audit),
        "<h2>Space by directory</h2>",
        treemap_svg(directory_tree(audit), title="allocated bytes by directory"),
    ]
    if audit.packages:
        parts += [
            "<h2>Space by package</h2>",
            treemap_svg(package_tree(audit), title="allocated bytes by package"),
        ]
    parts += ["<h2>Budget</h2>", facts_table(budget_facts(audit))]
    if b.top_directories:
        parts += [
            "<h3>Top directories</h3>",
            table(["directory", "allocated"], [(p, format_size(n)) for p, n in b.top_directories], numeric=[1]),
        ]
    if audit.packages:
        top = sorted(audit.packages, key=lambda p: (-p.size, p.name))[:25]
        parts += [
            "<h3>Top packages</h3>",
            table(
                ["package", "version", "manager", "declared", "in this image", "files"],
                [
                    (p.name, p.version, p.manager, format_size(p.declared_size), format_size(p.size), p.files)
                    for p in top
                ],
                numeric=[3, 4, 5],
            ),
        ]
    if b.duplicates:
        parts += [
            "<h3>Duplicate content (not hardlinked)</h3>",
            table(
                ["copies", "size", "reclaimable", "paths"],
                [
                    (len(g.paths), format_size(g.size), format_size(g.reclaimable), ", ".join(g.paths[:4]))
                    for g in b.duplicates
                ],
                numeric=[0, 1, 2],
            ),
        ]
    parts += ["<h2>Filesystem</h2>", facts_table(filesystem_facts(audit))]
    if audit.warnings:
        parts += ["<h2>Warnings</h2><ul>", *(f"<li>{esc(w)}</li>" for w in audit.warnings), "</ul>"]
    files = len(unique_inodes(audit.files))
    parts.append(
        f"<p><small>{len(audit.files)} paths, {files} inodes; audited in {audit.seconds:.2f} s by nexlab.</small></p>"
    )
    return "".join(parts)


def audit_html(audit: Audit, *, standalone: bool = True) -> str:
    body = audit_body(audit)
    return page(f"nexlab audit: {audit.image.name}", body) if standalone else fragment(body)


def write_html(audit: Audit, destination: str | os.PathLike[str]) -> Path:
    path = Path(destination)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(audit_html(audit), encoding="utf-8")
    return path
