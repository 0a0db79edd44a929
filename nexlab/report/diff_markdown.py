"""The diff as Markdown, for pull requests and CI summaries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexlab.report.diff_text import verdict
from nexlab.report.printable import markdown_cell, markdown_code
from nexlab.sizes import format_size

if TYPE_CHECKING:
    from nexlab.diff.model import Diff

LIMIT = 100


def _code(value: object) -> str:
    """A code span inside a table cell: backticks and pipes from file names neutralised."""
    return markdown_cell(markdown_code(value))


def diff_markdown(diff: Diff, *, title: str = "nexlab diff", limit: int = LIMIT) -> str:
    counts = diff.counts()
    lines = [
        f"## {title}",
        "",
        f"- A: {markdown_code(diff.a)} ({diff.entries_a} entries)",
        f"- B: {markdown_code(diff.b)} ({diff.entries_b} entries)",
        f"- **{verdict(diff)}**: {counts['added']} added, {counts['removed']} removed, "
        f"{counts['modified']} modified, {counts['mtime_only']} mtime only; "
        f"{len(diff.filesystem)} superblock fields differ",
        "",
    ]
    if diff.filesystem:
        lines += ["| field | A | B | cause |", "|---|---|---|---|"]
        lines += [f"| {f.field} | {_code(f.a)} | {_code(f.b)} | {f.cause or ''} |" for f in diff.filesystem]
        lines.append("")
    real = diff.real_changes
    if real:
        lines += ["| change | path | fields | cause |", "|---|---|---|---|"]
        lines += [
            f"| {c.change} | {_code(c.path)} | {markdown_cell(', '.join(c.fields) or c.type)} | {c.cause or ''} |"
            for c in real[:limit]
        ]
        if len(real) > limit:
            lines.append(f"\n… and {len(real) - limit} more.")
        lines.append("")
    if diff.package_records:
        lines += ["| package | change | A | B | size Δ |", "|---|---|---|---|---|"]
        lines += [
            f"| {markdown_cell(p.name)} | {p.change} | {markdown_cell(p.version_a or '-')} | "
            f"{markdown_cell(p.version_b or '-')} | "
            f"{'+' if p.size_b >= p.size_a else '-'}{format_size(abs(p.size_b - p.size_a))} |"
            for p in diff.package_records[:limit]
        ]
        lines.append("")
    if diff.causes:
        lines += [f"- **{key}**: {c.explanation}. Fix: {c.fix}." for key, c in diff.causes.items()]
        lines.append("")
    return "\n".join(lines)
