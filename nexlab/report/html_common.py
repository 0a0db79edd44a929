"""Pieces every nexlab HTML report shares: the page shell, CSS, tables and a treemap in SVG.

Everything is inline (no scripts, fonts or images from anywhere): a report must
open offline, attached to a CI run or mailed around. Every string that came
from an image is escaped here, at the last moment.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from nexlab.report.printable import printable
from nexlab.sizes import format_size

CSS = """
.nexlab-report { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
  max-width: 1100px; margin: 0 auto; line-height: 1.4; }
.nexlab-report h1 { font-size: 1.5em; margin: .4em 0; }
.nexlab-report h2 { font-size: 1.2em; margin: 1.2em 0 .4em; border-bottom: 1px solid #d8dce5; }
.nexlab-report table { border-collapse: collapse; margin: .3em 0 1em; font-size: 90%; }
.nexlab-report th, .nexlab-report td { text-align: left; padding: 2px 10px 2px 4px; vertical-align: top;
  border-bottom: 1px solid #eef0f4; }
.nexlab-report td.num { text-align: right; font-variant-numeric: tabular-nums; }
.nexlab-report code, .nexlab-report .mono { font-family: ui-monospace, Menlo, Consolas, monospace;
  font-size: 92%; }
.nexlab-report .sev { font-weight: 600; padding: 0 6px; border-radius: 3px; color: #fff; }
.nexlab-report .sev-critical { background: #8b0000; }
.nexlab-report .sev-high { background: #d0342c; }
.nexlab-report .sev-medium { background: #e08a00; }
.nexlab-report .sev-low { background: #5877a8; }
.nexlab-report .sev-info { background: #7b8494; }
.nexlab-report .ok { color: #17803d; font-weight: 600; }
.nexlab-report .bad { color: #b3261e; font-weight: 600; }
.nexlab-report .cards { display: flex; flex-wrap: wrap; gap: 10px; margin: .5em 0 1em; }
.nexlab-report .card { border: 1px solid #d8dce5; border-radius: 6px; padding: 6px 12px; min-width: 130px; }
.nexlab-report .card b { display: block; font-size: 1.25em; }
.nexlab-report svg text { font-size: 11px; pointer-events: none; }
.nexlab-report details summary { cursor: pointer; }
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


def esc(value: object) -> str:
    """Escape anything for HTML text or a quoted attribute; undecodable bytes show as ``\\xff``."""
    return html.escape(printable(value, keep_newlines=True), quote=True)


def page(title: str, body: str) -> str:
    """A whole self-contained HTML document."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><div class='nexlab-report'>{body}</div></body></html>\n"
    )


def fragment(body: str) -> str:
    """The same report for Jupyter: scoped CSS, no document shell."""
    return f"<div class='nexlab-report'><style>{CSS}</style>{body}</div>"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: Sequence[int] = ()) -> str:
    """A table of escaped cells; ``numeric`` columns are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f"<td class='num'>{esc(cell)}</td>" if i in numeric else f"<td>{esc(cell)}</td>"
            for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def facts_table(facts: Iterable[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td class='mono'>{esc(v)}</td></tr>" for k, v in facts)
    return f"<table>{rows}</table>"


@dataclass
class Node:
    """A box of a treemap: a label, its bytes, and the boxes inside it."""

    label: str
    size: int
    children: list[Node] = field(default_factory=list)
    #: Longer text for the tooltip (defaults to the label).
    title: str = ""


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
