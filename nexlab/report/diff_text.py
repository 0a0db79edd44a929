"""The diff for a terminal: verdicts first, then the changes, sizes and causes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexlab.report.printable import printable
from nexlab.sizes import format_size

if TYPE_CHECKING:
    from nexlab.diff.model import Change, Diff, SizeRow

#: How many lines each section shows before "… and N more".
LIMIT = 40
_MARK = {"added": "+", "removed": "-", "modified": "M"}


def verdict(diff: Diff) -> str:
    if diff.identical_bytes:
        return "identical (bit for bit)"
    if diff.identical_content:
        return "same content, different bytes"
    return "content differs"


def diff_text(diff: Diff, *, limit: int = LIMIT) -> str:
    counts = diff.counts()
    lines = [
        f"A: {diff.a} ({diff.entries_a} entries)",
        f"B: {diff.b} ({diff.entries_b} entries)",
        f"verdict: {verdict(diff)}",
        f"  bytes       {'identical' if diff.identical_bytes else 'differ'}",
        f"  filesystem  {len(diff.filesystem)} superblock fields differ",
        f"  content     {counts['added']} added, {counts['removed']} removed, {counts['modified']} modified, "
        f"{counts['mtime_only']} mtime only",
    ]
    if diff.filesystem:
        lines.append("filesystem:")
        width = max(len(f.field) for f in diff.filesystem)
        lines += [
            f"  {f.field.ljust(width)}  {f.a} → {f.b}" + (f"  [{f.cause}]" if f.cause else "") for f in diff.filesystem
        ]
    real = diff.real_changes
    if real:
        lines.append("changes:")
        lines += [_change_line(c) for c in real[:limit]]
        if len(real) > limit:
            lines.append(f"  … and {len(real) - limit} more (--json lists them all)")
    mtime_only = diff.mtime_only
    if mtime_only:
        examples = ", ".join(printable(c.path) for c in mtime_only[:3])
        lines.append(f"mtime only: {len(mtime_only)} paths, e.g. {examples}  [timestamps]")
    if diff.package_records:
        lines.append("packages:")
        for p in diff.package_records[:limit]:
            lines.append(
                f"  {p.change:<10} {printable(p.name)} {printable(p.version_a or '-')} → "
                f"{printable(p.version_b or '-')}  "
                f"({_delta(p.size_b - p.size_a)})"
            )
        if len(diff.package_records) > limit:
            lines.append(f"  … and {len(diff.package_records) - limit} more")
    for title, rows in (
        ("size by directory", diff.directory_size_records),
        ("size by package", diff.package_size_records),
    ):
        changed = [r for r in rows if r.delta]
        if changed:
            lines.append(f"{title} (largest changes):")
            lines += [_size_line(r) for r in changed[: min(limit, 15)]]
    if diff.causes:
        lines.append("causes:")
        for key, cause in diff.causes.items():
            lines.append(f"  [{key}] {cause.explanation}")
            lines.append(f"      fix: {cause.fix}")
    if diff.deep is not None:
        lines.append(f"diffoscope: {diff.deep.files} files" + (f"; {diff.deep.note}" if diff.deep.note else ""))
        if diff.deep.text:
            lines += ["  " + line for line in diff.deep.text.splitlines()[:200]]
    lines += [f"note: {printable(n)}" for n in diff.notes]
    # Labels, paths and diffoscope's report carry bytes from the images: none may reach a
    # terminal raw (an ESC sequence could rewrite the screen), whichever line they are on.
    return printable("\n".join(lines), keep_newlines=True)


def _change_line(change: Change) -> str:
    # Names come from the image: escape what could move a terminal's cursor or fail to encode.
    text = f"  {_MARK[change.change]} {printable(change.path)}"
    if change.fields:
        text += "  " + ", ".join(f"{name} {printable(old)}→{printable(new)}" for name, old, new in change.detail)
    elif change.type:
        text += f"  ({change.type})"
    if change.cause:
        text += f"  [{change.cause}]"
    return text


def _size_line(row: SizeRow) -> str:
    percent = "new" if row.percent is None else f"{row.percent:+.1f} %"
    sizes = f"{format_size(row.a):>10} → {format_size(row.b):>10}"
    return f"  {printable(row.name):<40} {sizes}  {_delta(row.delta)} ({percent})"


def _delta(value: int) -> str:
    return ("+" if value >= 0 else "-") + format_size(abs(value))
