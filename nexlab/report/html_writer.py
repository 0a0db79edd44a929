"""The HTML writer: one CSS, one escaper, one page shell, tables with a row limit, SVG treemaps.

Everything is inline (no scripts, fonts or images from anywhere): a report must
open offline, attached to a CI run or mailed around. Every string that came
from an image is escaped here, at the last moment.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence

# The names, not the module: the package's ``document`` is dispatch's function once it is imported.
from nexlab.report.document import (
    Code,
    Document,
    Facts,
    Findings,
    Group,
    Node,
    Notes,
    Paragraph,
    Preformatted,
    Section,
    Table,
    Treemap,
    Verdict,
    heading,
)
from nexlab.report.printable import printable
from nexlab.sizes import format_size

#: Rows per table before the rest is summarised: a browser chokes on 100,000 rows.
ROW_LIMIT = 2000
#: Paths listed under a finding before "… and N more".
SHOWN_PATHS = 20

CSS = """
.nexlab-report { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
  max-width: 1100px; margin: 0 auto; line-height: 1.4; font-size: 14px; }
.nexlab-report h1 { font-size: 1.5em; margin: .4em 0; }
.nexlab-report h2 { font-size: 1.2em; margin: 1.2em 0 .4em; border-bottom: 1px solid #d8dce5; }
.nexlab-report h3 { font-size: 1.05em; margin: 1em 0 .3em; }
.nexlab-report table { border-collapse: collapse; margin: .3em 0 1em; font-size: 90%; }
.nexlab-report th, .nexlab-report td { text-align: left; padding: 2px 10px 2px 4px; vertical-align: top;
  border-bottom: 1px solid #eef0f4; }
.nexlab-report td.num { text-align: right; font-variant-numeric: tabular-nums; }
.nexlab-report code, .nexlab-report .mono { font-family: ui-monospace, Menlo, Consolas, monospace;
  font-size: 92%; }
.nexlab-report pre { font-size: 85%; max-height: 20em; overflow: auto; }
.nexlab-report .sev { font-weight: 600; padding: 0 6px; border-radius: 3px; color: #fff; }
.nexlab-report .sev-critical { background: #8b0000; }
.nexlab-report .sev-high { background: #d0342c; }
.nexlab-report .sev-medium { background: #e08a00; }
.nexlab-report .sev-low { background: #5877a8; }
.nexlab-report .sev-info { background: #7b8494; }
.nexlab-report .ok { color: #17803d; font-weight: 600; }
.nexlab-report .bad { color: #b3261e; font-weight: 600; }
.nexlab-report .verdict { font-size: 1.2em; padding: .4em .6em; border-radius: 4px; display: inline-block; }
.nexlab-report .verdict.ok { background: #e3f4e3; color: #1b5e20; }
.nexlab-report .verdict.warn { background: #fff4d6; color: #7a5300; font-weight: 600; }
.nexlab-report .verdict.bad { background: #fde2e1; color: #8e1c16; }
.nexlab-report .added { color: #1b5e20; } .nexlab-report .removed { color: #8e1c16; }
.nexlab-report .cards { display: flex; flex-wrap: wrap; gap: 10px; margin: .5em 0 1em; }
.nexlab-report .card { border: 1px solid #d8dce5; border-radius: 6px; padding: 6px 12px; min-width: 130px; }
.nexlab-report .card b { display: block; font-size: 1.25em; }
.nexlab-report svg text { font-size: 11px; pointer-events: none; }
.nexlab-report details summary { cursor: pointer; }
.nexlab-report iframe { width: 100%; height: 40em; border: 1px solid #ccc; }
"""

#: A qualitative palette that stays readable with white labels.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b6992d",
    "#e15759",
    "#76b7b2",
    "#b07aa1",
    "#9c755f",
    "#6b8e23",
    "#d37295",
    "#499894",
    "#86bcb6",
)


def esc(value: object, *, keep_newlines: bool = False) -> str:
    """Escape anything for HTML text or a quoted attribute; undecodable bytes show as ``\\xff``."""
    return html.escape(printable(value, keep_newlines=keep_newlines), quote=True)


def page(title: str, body: str) -> str:
    """A whole self-contained HTML document."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><div class='nexlab-report'>{body}</div></body></html>\n"
    )


def fragment(body: str) -> str:
    """The same report for Jupyter: the styles first, then the body, no document shell.

    Its pictures survive an untrusted notebook (``portable_svg``)."""
    return f"<style>{CSS}{PORTABLE_CSS}</style><div class='nexlab-report'>{portable_svg(body)}</div>"


#: Shows the inline SVG, hides its picture copy, where styles apply (a trusted notebook, a widget).
PORTABLE_CSS = ".nx-svg-live{display:block!important}.nx-svg-copy{display:none!important}"
#: Hidden twice: a sanitizer that keeps ``style`` (JupyterLab's) or only ``hidden`` still hides it;
#: the value is not empty because sanitizers drop empty attributes (sanitize-html keeps only alt).
_LIVE = "<div class='nx-svg-live' hidden='hidden' style='display:none'>"
#: An inline SVG not yet made portable (so that ``portable_svg`` may run twice on the same HTML).
_SVG = re.compile(r"(?<!" + re.escape(_LIVE) + r")<svg\b([^>]*)>(.*?)</svg>", re.DOTALL)
_PICTURE_STYLE = "<style>text{font:11px system-ui,sans-serif}</style>"


def portable_html(html: str) -> str:
    """``html`` (a treemap, a chart) for a notebook cell: ``portable_svg`` and the style it needs."""
    return f"<style>{PORTABLE_CSS}</style>{portable_svg(html)}"


def portable_svg(html: str) -> str:
    """Each inline ``<svg>`` of ``html`` twice: live (tooltips) and as an ``<img>`` data URI.

    An untrusted notebook (JupyterLab's sanitizer), nbconvert's and other static
    viewers drop ``<svg>`` and ``<style>`` and keep the text of the drawing, a dump of
    labels. There the ``hidden`` attribute keeps that dump out of sight and the
    picture, which needs no script, shows. Where the styles of ``PORTABLE_CSS``
    apply (a trusted notebook, a widget, nbconvert), the live SVG shows and its copy
    is hidden.
    """

    def both(match: re.Match[str]) -> str:
        attributes, inner = match.group(1), match.group(2)
        if "xmlns=" not in attributes:
            attributes = " xmlns='http://www.w3.org/2000/svg'" + attributes
        picture = f"<svg{attributes}>{_PICTURE_STYLE}{inner}</svg>"
        label = re.search(r"aria-label='([^']*)'", attributes)
        alt = label.group(1) if label else "chart"
        data = base64.b64encode(picture.encode("utf-8")).decode("ascii")
        return (
            f"{_LIVE}{match.group(0)}</div>"
            f"<img class='nx-svg-copy' alt='{alt}' style='max-width:100%' src='data:image/svg+xml;base64,{data}'>"
        )

    return _SVG.sub(both, html)


def render(document: Document, *, standalone: bool = True) -> str:
    """The document as a page (``standalone``) or a notebook fragment."""
    if document.compact:
        body = _compact(document)
    else:
        parts = [f"<h1>{esc(document.title)}</h1>"]
        if document.cards:
            parts.append(_cards(document.cards))
        parts += [_section(s, 2) for s in document.sections]
        if document.footer:
            parts.append(f"<p><small>{esc(document.footer)}</small></p>")
        body = "".join(parts)
    return page(document.title, body) if standalone else fragment(body)


def _compact(document: Document) -> str:
    mark, colour = ("✔", "#1a7f37") if document.ok is not False else ("✘", "#cf222e")
    parts = [f"<b style='color:{colour}'>{mark} {esc(document.title)}</b>"]
    for section in document.sections:
        parts.append(facts_table(section.rows) if isinstance(section, Facts) else _section(section, 3))
    return "".join(parts)


def _heading(title: str, level: int) -> str:
    return f"<h{level}>{esc(heading(title))}</h{level}>" if title else ""


def _section(section: Section, level: int) -> str:
    match section:
        case Facts(title, rows):
            return _heading(title, level) + facts_table(rows)
        case Table():
            return _heading(section.title, level) + _table(section)
        case Verdict(text, state, detail):
            extra = f" {esc(detail)}" if detail else ""
            return f"<p><span class='verdict {esc(state)}'>{esc(text)}</span>{extra}</p>"
        case Findings():
            return _heading(section.title, level) + _findings(section)
        case Notes(title, items):
            return _heading(title, level) + "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"
        case Paragraph(text):
            return f"<p>{esc(text)}</p>"
        case Treemap(title, caption, nodes):
            return _heading(title, level) + treemap_svg(nodes, title=caption)
        case Preformatted(title, text, _lines, _tail, opened, whole_page):
            if whole_page:
                # srcdoc keeps the embedded page and its styles apart from ours, still in one file.
                return (
                    _heading(title, level) + f'<iframe sandbox srcdoc="{html.escape(whole_page, quote=True)}"></iframe>'
                )
            shown = " open" if opened else ""
            summary = f"<summary>{esc(heading(title))}</summary>"
            return f"<details{shown}>{summary}<pre>{esc(text, keep_newlines=True)}</pre></details>"
        case Group(title, sections, folded):
            inner = "".join(_section(s, level + 1) for s in sections)
            if folded:
                return f"<details><summary>{esc(heading(title))}</summary>{inner}</details>"
            return _heading(title, level) + inner
    raise TypeError(f"no HTML for {type(section).__name__}")


def _cell(value: object, numeric: bool, kind: bool) -> str:
    text = f"<code>{esc(value)}</code>" if isinstance(value, Code) and str(value) else esc(value)
    if numeric:
        return f"<td class='num'>{text}</td>"
    if kind:
        return f"<td class='{esc(value)}'>{text}</td>"
    return f"<td>{text}</td>"


def _table(section: Table) -> str:
    limit = min(ROW_LIMIT, section.limit or ROW_LIMIT)
    rows = [
        "<tr>"
        + "".join(_cell(cell, i in section.numeric, i == section.kind_column) for i, cell in enumerate(row))
        + "</tr>"
        for row in section.rows[:limit]
    ]
    head = "".join(f"<th>{esc(h)}</th>" for h in section.headers)
    more = len(section.rows) - limit
    tail = f"<p>… and {more} more ({esc(section.more)}).</p>" if more > 0 else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{tail}"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: Sequence[int] = ()) -> str:
    """A table of escaped cells, no row limit (the notebook widgets page their own)."""
    return _table(Table("", headers, list(rows), numeric=numeric, limit=None))


def facts_table(facts: Iterable[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td class='mono'>{esc(v)}</td></tr>" for k, v in facts)
    return f"<table>{rows}</table>"


def _findings(section: Findings) -> str:
    if not section.items:
        return "<p class='ok'>No findings.</p>"
    rows = []
    for f in section.items:
        paths = ""
        if f.paths:
            items = "".join(f"<li><code>{esc(p)}</code></li>" for p in f.paths[:SHOWN_PATHS])
            more = len(f.paths) - SHOWN_PATHS
            if more > 0:
                items += f"<li>… and {more} more (see the JSON)</li>"
            paths = f"<details><summary>{len(f.paths)} path(s)</summary><ul>{items}</ul></details>"
        rows.append(
            f"<tr><td><span class='sev sev-{esc(f.severity)}'>{esc(f.severity)}</span></td>"
            f"<td><code>{esc(f.code)}</code></td><td>{esc(f.message)}{paths}</td><td>{esc(f.fix)}</td></tr>"
        )
    head = "<tr><th>severity</th><th>code</th><th>finding</th><th>fix</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _cards(cards: Sequence[tuple[str, str, float | None]]) -> str:
    # The bar is our own markup; every value is escaped.
    shown = "".join(
        f"<div class='card'>{esc(label)}<b>{esc(value)}"
        + (f"<br>{bar(fraction, width=110)}" if fraction is not None else "")
        + "</b></div>"
        for label, value, fraction in cards
    )
    return f"<div class='cards'>{shown}</div>"


def _layout(sizes: Sequence[int], x: float, y: float, dx: float, dy: float) -> list[dict[str, float]]:
    import squarify

    positive = [max(s, 1) for s in sizes]
    normalized = squarify.normalize_sizes(positive, dx, dy)
    rects: list[dict[str, float]] = squarify.squarify(normalized, x, y, dx, dy)
    return rects


def treemap_svg(
    nodes: Sequence[Node], *, width: int = 1000, height: int = 420, title: str = "", max_boxes: int = 40
) -> str:
    """A two-level squarified treemap as inline SVG (tooltips through ``<title>``).

    The largest ``max_boxes`` nodes are drawn; the rest are folded into one
    "other" box so the picture stays readable and the file small.
    """
    ranked = sorted((n for n in nodes if n.size > 0), key=lambda n: (-n.size, n.label))
    if len(ranked) > max_boxes:
        rest = ranked[max_boxes - 1 :]
        ranked = [*ranked[: max_boxes - 1], Node(f"{len(rest)} others", sum(n.size for n in rest))]
    parts = [
        f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        f"style='max-width:100%;height:auto' role='img' aria-label='{esc(title)}'>"
    ]
    if not ranked:
        parts.append(f"<text x='10' y='20'>{esc('nothing to show')}</text></svg>")
        return "".join(parts)
    rects = _layout([n.size for n in ranked], 0, 0, width, height)
    for index, (node, rect) in enumerate(zip(ranked, rects, strict=True)):
        color = PALETTE[index % len(PALETTE)]
        x, y, dx, dy = rect["x"], rect["y"], rect["dx"], rect["dy"]
        tip = f"{node.title or node.label}: {format_size(node.size)}"
        parts.append(
            f"<g><title>{esc(tip)}</title><rect x='{x:.1f}' y='{y:.1f}' width='{dx:.1f}' height='{dy:.1f}' "
            f"fill='{color}' stroke='#fff' stroke-width='2'/></g>"
        )
        children = sorted((c for c in node.children if c.size > 0), key=lambda c: (-c.size, c.label))[:max_boxes]
        inner_y = y + 16 if dy > 40 else y
        if children and dx > 30 and dy > 40:
            inner = _layout([c.size for c in children], x + 3, inner_y, max(dx - 6, 1), max(y + dy - inner_y - 3, 1))
            for child, box in zip(children, inner, strict=True):
                child_tip = f"{child.title or child.label}: {format_size(child.size)}"
                parts.append(
                    f"<g><title>{esc(child_tip)}</title><rect x='{box['x']:.1f}' y='{box['y']:.1f}' "
                    f"width='{box['dx']:.1f}' height='{box['dy']:.1f}' fill='{color}' fill-opacity='0.55' "
                    "stroke='#fff' stroke-width='0.7'/></g>"
                )
                if box["dx"] > 70 and box["dy"] > 14:
                    parts.append(_label(child.label, box["x"] + 3, box["y"] + 12, box["dx"] - 6))
        if dx > 50 and dy > 14:
            parts.append(_label(f"{node.label} {format_size(node.size)}", x + 4, y + 12, dx - 8, bold=True))
    parts.append("</svg>")
    return "".join(parts)


def _label(text: str, x: float, y: float, width: float, *, bold: bool = False) -> str:
    # About 6.5 px per character at 11 px: cut rather than overflow the box.
    room = max(int(width / 6.5), 1)
    shown = text if len(text) <= room else text[: max(room - 1, 1)] + "…"
    weight = " font-weight='600'" if bold else ""
    return f"<text x='{x:.1f}' y='{y:.1f}' fill='#fff'{weight}>{esc(shown)}</text>"


def bar(fraction: float, *, width: int = 240, color: str = "#4e79a7") -> str:
    """A small horizontal bar (inline SVG) for a share such as used/total."""
    filled = max(0.0, min(1.0, fraction)) * width
    return (
        f"<svg width='{width}' height='12'>"
        f"<rect width='{width}' height='12' fill='#e6e9ef'/><rect width='{filled:.1f}' height='12' fill='{color}'/>"
        "</svg>"
    )
