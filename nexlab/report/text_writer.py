"""The terminal writer: aligned ``label  value`` facts, indented tables, nothing raw from an image."""

from __future__ import annotations

# The names, not the module: the package's ``document`` is dispatch's function once it is imported.
from nexlab.report.document import (
    Code,
    Document,
    Facts,
    Findings,
    Group,
    Notes,
    Paragraph,
    Preformatted,
    Section,
    Table,
    Treemap,
    Verdict,
)
from nexlab.report.printable import printable

#: Rows per table before "… and N more": a terminal is for reading, the JSON lists everything.
ROW_LIMIT = 40


def render(document: Document) -> str:
    lines: list[str] = []
    for section in document.sections:
        lines += _section(section)
    if document.footer:
        lines.append(document.footer)
    # Paths, labels and console lines come from the image: an ESC sequence could rewrite
    # the screen, so nothing reaches the terminal raw, whichever line it is on.
    return printable("\n".join(lines), keep_newlines=True)


def _cell(value: object) -> str:
    return printable(value.value if isinstance(value, Code) else value)


def _section(section: Section) -> list[str]:
    match section:
        case Facts(title, rows):
            if not rows:
                return []
            width = max(len(label) for label, _ in rows)
            head = [f"{title}:"] if title else []
            indent = "  " if title else ""
            return head + [f"{indent}{label.ljust(width)}  {value}".rstrip() for label, value in rows]
        case Table():
            return _table(section)
        case Verdict(text, _state, detail):
            return [f"verdict: {text}" + (f" ({detail})" if detail else "")]
        case Findings():
            return _findings(section)
        case Notes(title, items):
            if not items:
                return []
            return [f"{title}:"] + [f"  {printable(item)}" for item in items]
        case Paragraph(text):
            return [text]
        case Treemap():
            # A picture has no terminal form: the tables beside it carry its numbers.
            return []
        case Preformatted(title, text, lines, tail, opened):
            if not opened:
                return []
            body = text.splitlines()
            cap = len(body) if lines is None else lines
            if len(body) <= cap:
                return [f"{title}:"] + [f"  | {line}" for line in body]
            if tail:
                return [f"{title}:", f"  … {len(body) - cap} earlier lines"] + [f"  | {line}" for line in body[-cap:]]
            return [f"{title}:"] + [f"  | {line}" for line in body[:cap]] + [f"  … and {len(body) - cap} more lines"]
        case Group(title, sections):
            inner = [line for s in sections for line in _section(s)]
            return [f"{title}:"] + ["  " + line for line in inner]
    raise TypeError(f"no text for {type(section).__name__}")


def _table(section: Table) -> list[str]:
    if not section.rows:
        return []
    limit = min(ROW_LIMIT, section.limit or ROW_LIMIT)
    shown = [[_cell(c) for c in row] for row in section.rows[:limit]]
    # Headers help once there are more than two columns; a (size, name) list explains itself.
    body = [list(section.headers), *shown] if len(section.headers) > 2 else shown
    widths = [max(len(row[i]) for row in body) for i in range(len(section.headers))]
    lines = [f"{section.title}:"]
    for row in body:
        cells = [cell.rjust(widths[i]) if i in section.numeric else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    more = len(section.rows) - limit
    if more > 0:
        lines.append(f"  … and {more} more ({section.more})")
    return lines


def _findings(section: Findings) -> list[str]:
    if not section.items:
        return [f"{section.title}: none"]
    lines = [f"{section.title} ({len(section.items)}):"]
    for finding in section.items:
        lines.append(f"  {finding.severity.upper():8} {finding.code}: {finding.message}")
        lines.append(f"           fix: {finding.fix}")
        if finding.paths:
            shown = ", ".join(finding.paths[: section.shown_paths])
            more = len(finding.paths) - section.shown_paths
            lines.append(f"           paths: {shown}" + (f" (+{more} more)" if more > 0 else ""))
    return lines
