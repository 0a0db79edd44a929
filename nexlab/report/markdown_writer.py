"""The Markdown writer, for a CI job summary or a pull request comment.

Every cell goes through ``markdown_cell`` (a pipe would end the cell, a newline
the row) and every literal through ``markdown_code`` (a backtick would end the
code span and let the rest of a file name be read as Markdown).
"""

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
    heading,
)
from nexlab.report.printable import markdown_cell, markdown_code, printable

#: Rows per table before "… and N more": a pull request comment has a size limit.
ROW_LIMIT = 100
#: Lines of a preformatted block (diffoscope's text) before the rest is left to the HTML.
PRE_LIMIT = 200


def render(document: Document, *, level: int = 1) -> str:
    lines = [f"{'#' * level} {markdown_cell(document.title)}", ""]
    for section in document.sections:
        lines += _section(section, level + 1)
    if document.footer:
        lines += [f"_{markdown_cell(document.footer)}_", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _cell(value: object) -> str:
    if isinstance(value, Code):
        # An empty code span would show two backticks.
        return markdown_cell(markdown_code(value.value)) if str(value) else ""
    return markdown_cell(value)


def _heading(title: str, level: int) -> list[str]:
    return [f"{'#' * min(level, 6)} {markdown_cell(heading(title))}", ""] if title else []


def _rows(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def _section(section: Section, level: int) -> list[str]:
    match section:
        case Facts(title, rows):
            if not rows:
                return []
            return _heading(title, level) + _rows(["", ""], [[markdown_cell(k), markdown_cell(v)] for k, v in rows])
        case Table():
            return _table(section, level)
        case Verdict(text, _state, detail):
            return [f"**{markdown_cell(text)}**" + (f": {markdown_cell(detail)}" if detail else ""), ""]
        case Findings():
            return _heading(section.title, level) + _findings(section)
        case Notes(title, items):
            if not items:
                return []
            return _heading(title, level) + [f"- {markdown_cell(item)}" for item in items] + [""]
        case Paragraph(text):
            return [markdown_cell(text), ""]
        case Treemap():
            # No pictures in Markdown: the tables beside it carry its numbers.
            return []
        case Preformatted(title, text, lines, tail, opened):
            if not opened:
                return []
            cap = min(lines or PRE_LIMIT, PRE_LIMIT)
            body = printable(text, keep_newlines=True).replace("```", "'''").splitlines()
            if len(body) > cap and tail:
                return [
                    *_heading(title, level),
                    f"… {len(body) - cap} earlier lines",
                    "",
                    "```",
                    *body[-cap:],
                    "```",
                    "",
                ]
            more = [f"… and {len(body) - cap} more lines", ""] if len(body) > cap else []
            return [*_heading(title, level), "```", *body[:cap], "```", "", *more]
        case Group(title, sections):
            return _heading(title, level) + [line for s in sections for line in _section(s, level + 1)]
    raise TypeError(f"no Markdown for {type(section).__name__}")


def _table(section: Table, level: int) -> list[str]:
    if not section.rows:
        return []
    limit = min(ROW_LIMIT, section.limit or ROW_LIMIT)
    lines = _heading(section.title, level)
    lines += _rows(list(section.headers), [[_cell(c) for c in row] for row in section.rows[:limit]])
    more = len(section.rows) - limit
    if more > 0:
        lines += [f"… and {more} more ({section.more}).", ""]
    return lines


def _findings(section: Findings) -> list[str]:
    if not section.items:
        return ["None.", ""]
    rows = []
    for f in section.items:
        paths = ", ".join(markdown_code(p) for p in f.paths[: section.shown_paths])
        if len(f.paths) > section.shown_paths:
            paths += f" (+{len(f.paths) - section.shown_paths} more)"
        rows.append(
            [
                markdown_cell(f.severity),
                markdown_cell(markdown_code(f.code)),
                markdown_cell(f.message),
                markdown_cell(f.fix),
                markdown_cell(paths),
            ]
        )
    return _rows(["severity", "code", "finding", "fix", "paths"], rows)
