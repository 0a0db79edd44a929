"""The diff as Markdown, for pull requests and CI summaries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexlab.report.diff_text import verdict
from nexlab.report.printable import printable
from nexlab.sizes import format_size

if TYPE_CHECKING:
    from nexlab.diff.model import Diff

LIMIT = 100


def _cell(value: object) -> str:
    return printable(value).replace("|", "\\|")


def diff_markdown(diff: Diff, *, title: str = "nexlab diff", limit: int = LIMIT) -> str:
    counts = diff.counts()
    lines = [
        f"## {title}",
        "",
        f"- A: `{diff.a}` ({diff.entries_a} entries)",
        f"- B: `{diff.b}` ({diff.entries_b} entries)",
        f"- **{verdict(diff)}**: {counts['added']} added, {counts['removed']} removed, "
        f"{counts['modified']} modified, {counts['mtime_only']} mtime only; "
        f"{len(diff.filesystem)} superblock fields differ",
        "",
    ]
    if diff.filesystem:
        lines += ["| field | A | B | cause |", "|---|---|---|---|"]
        lines += [f"| {f.field} | `{_cell(f.a)}` | `{_cell(f.b)}` | {f.cause or ''} |" for f in diff.filesystem]
        lines.append("")
    real = diff.real_changes
    if real:
        lines += ["| change | path | fields | cause |", "|---|---|---|---|"]
        lines += [
            f"| {c.change} | `{_cell(c.path)}` | {_cell(', '.join(c.fields) or c.type)} | {c.cause or ''} |"
            for c in real[:limit]
        ]
        if len(real) > limit:
            lines.append(f"\n… and {len(real) - limit} more.")
        lines.append("")
    if diff.package_list:
        lines += ["| package | change | A | B | size Δ |", "|---|---|---|---|---|"]
        lines += [
            f"| {_cell(p.name)} | {p.change} | {_cell(p.version_a or '-')} | {_cell(p.version_b or '-')} | "
            f"{'+' if p.size_b >= p.size_a else '-'}{format_size(abs(p.size_b - p.size_a))} |"
            for p in diff.package_list[:limit]
        ]
        lines.append("")
    if diff.causes:
        lines += [f"- **{key}**: {c.explanation}. Fix: {c.fix}." for key, c in diff.causes.items()]
        lines.append("")
    return "\n".join(lines)
