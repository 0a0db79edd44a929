"""The diff as HTML: one self-contained page (no scripts, fonts or links to fetch), or a
fragment for Jupyter's ``_repr_html_``."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from nexlab.report.diff_text import verdict
from nexlab.report.printable import printable
from nexlab.sizes import format_size

if TYPE_CHECKING:
    from nexlab.diff.model import Change, Diff, SizeRow

#: Rows per table before the rest is summarised: a browser chokes on 100,000 rows.
ROW_LIMIT = 2000

CSS = """
.nexlab-diff{font-family:system-ui,sans-serif;font-size:14px;color:#222;max-width:80em}
.nexlab-diff table{border-collapse:collapse;margin:.4em 0 1em}
.nexlab-diff th,.nexlab-diff td{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
.nexlab-diff td.num{text-align:right;font-variant-numeric:tabular-nums}
.nexlab-diff code,.nexlab-diff td.path{font-family:ui-monospace,monospace;font-size:13px}
.nexlab-diff .verdict{font-size:1.2em;font-weight:bold;padding:.4em .6em;border-radius:4px;display:inline-block}
.nexlab-diff .ok{background:#e3f4e3;color:#1b5e20}.nexlab-diff .warn{background:#fff4d6;color:#7a5300}
.nexlab-diff .bad{background:#fde2e1;color:#8e1c16}
.nexlab-diff .added{color:#1b5e20}.nexlab-diff .removed{color:#8e1c16}.nexlab-diff .cause{color:#555}
.nexlab-diff iframe{width:100%;height:40em;border:1px solid #ccc}
"""


def _e(value: object) -> str:
    """Escaped for HTML, after undecodable bytes and control characters became visible escapes."""
    return html.escape(printable(value))


def verdict_class(diff: Diff) -> str:
    return "ok" if diff.identical_bytes else "warn" if diff.identical_content else "bad"


def diff_html(diff: Diff, *, standalone: bool = True, title: str = "nexlab diff") -> str:
    counts = diff.counts()
    parts = [
        f"<h2>{_e(title)}</h2>",
        f"<p>A: <code>{_e(diff.a)}</code> ({diff.entries_a} entries)<br>"
        f"B: <code>{_e(diff.b)}</code> ({diff.entries_b} entries)</p>",
        f"<p><span class='verdict {verdict_class(diff)}'>{_e(verdict(diff))}</span></p>",
        "<table><tr><th>bytes</th><td>" + ("identical" if diff.identical_bytes else "differ") + "</td></tr>"
        f"<tr><th>filesystem</th><td>{len(diff.filesystem)} superblock fields differ</td></tr>"
        f"<tr><th>content</th><td>{counts['added']} added, {counts['removed']} removed, "
        f"{counts['modified']} modified, {counts['mtime_only']} mtime only</td></tr></table>",
    ]
    if diff.filesystem:
        rows = "".join(
            f"<tr><td>{_e(f.field)}</td><td><code>{_e(f.a)}</code></td><td><code>{_e(f.b)}</code></td>"
            f"<td class='cause'>{_e(f.cause or '')}</td></tr>"
            for f in diff.filesystem
        )
        parts.append(
            f"<h3>Filesystem</h3><table><tr><th>field</th><th>A</th><th>B</th><th>cause</th></tr>{rows}</table>"
        )
    parts.append(changes_table("Changes", diff.real_changes))
    if diff.mtime_only:
        parts.append(
            f"<details><summary>{len(diff.mtime_only)} paths differ only in mtime [timestamps]</summary>"
            + changes_table("", diff.mtime_only)
            + "</details>"
        )
    if diff.package_records:
        rows = "".join(
            f"<tr><td>{_e(p.name)}</td><td>{_e(p.manager)}</td><td>{_e(p.change)}</td>"
            f"<td><code>{_e(p.version_a or '-')}</code></td><td><code>{_e(p.version_b or '-')}</code></td>"
            f"<td class='num'>{_delta(p.size_b - p.size_a)}</td></tr>"
            for p in diff.package_records[:ROW_LIMIT]
        )
        parts.append(
            "<h3>Packages</h3><table><tr><th>package</th><th>manager</th><th>change</th><th>A</th><th>B</th>"
            f"<th>size Δ</th></tr>{rows}</table>"
        )
    parts.append(size_table("Size by directory", "directory", diff.directory_size_records))
    parts.append(size_table("Size by package", "package", diff.package_size_records))
    if diff.causes:
        rows = "".join(
            f"<tr><td><code>{_e(key)}</code></td><td>{_e(c.explanation)}</td><td>{_e(c.fix)}</td></tr>"
            for key, c in diff.causes.items()
        )
        parts.append(f"<h3>Causes</h3><table><tr><th>cause</th><th>why</th><th>fix</th></tr>{rows}</table>")
    if diff.deep is not None:
        parts.append(f"<h3>diffoscope ({diff.deep.files} files)</h3>")
        if diff.deep.note:
            parts.append(f"<p>{_e(diff.deep.note)}</p>")
        if diff.deep.html:
            # srcdoc keeps diffoscope's own page and styles apart from ours, still in one file.
            parts.append(f'<iframe sandbox srcdoc="{html.escape(diff.deep.html, quote=True)}"></iframe>')
        elif diff.deep.text:
            parts.append(f"<pre>{_e(diff.deep.text)}</pre>")
    if diff.notes:
        parts.append("<h3>Notes</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in diff.notes) + "</ul>")
    body = f"<div class='nexlab-diff'>{''.join(parts)}</div>"
    if not standalone:
        return f"<style>{CSS}</style>{body}"
    return page(title, body)


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n"
    )


def changes_table(title: str, changes: tuple[Change, ...]) -> str:
    if not changes:
        return ""
    rows = []
    for c in changes[:ROW_LIMIT]:
        what = ", ".join(f"{name}: {old} → {new}" for name, old, new in c.detail) if c.detail else c.type
        rows.append(
            f"<tr><td class='{c.change}'>{_e(c.change)}</td><td class='path'>{_e(c.path)}</td>"
            f"<td><code>{_e(what)}</code></td><td class='cause'>{_e(c.cause or '')}</td></tr>"
        )
    more = f"<p>… and {len(changes) - ROW_LIMIT} more (see the JSON).</p>" if len(changes) > ROW_LIMIT else ""
    heading = f"<h3>{_e(title)} ({len(changes)})</h3>" if title else ""
    return (
        f"{heading}<table><tr><th>change</th><th>path</th><th>fields</th><th>cause</th></tr>{''.join(rows)}</table>"
        + more
    )


def size_table(title: str, label: str, rows: tuple[SizeRow, ...]) -> str:
    changed = [r for r in rows if r.delta][:50]
    if not changed:
        return ""
    body = "".join(
        f"<tr><td class='path'>{_e(r.name)}</td><td class='num'>{format_size(r.a)}</td>"
        f"<td class='num'>{format_size(r.b)}</td><td class='num'>{_delta(r.delta)}</td>"
        f"<td class='num'>{'new' if r.percent is None else f'{r.percent:+.1f} %'}</td></tr>"
        for r in changed
    )
    return (
        f"<h3>{_e(title)}</h3><table><tr><th>{_e(label)}</th><th>A</th><th>B</th><th>Δ</th><th>%</th></tr>"
        f"{body}</table>"
    )


def _delta(value: int) -> str:
    return ("+" if value >= 0 else "-") + format_size(abs(value))
