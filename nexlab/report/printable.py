"""Show any string from an image safely: undecodable bytes and control characters become escapes.

A file name is whatever bytes the image holds. Raw, it could clear a terminal
or move its cursor (escape sequences), or fail to encode; the reports show
``\\xff`` and ``\\x1b`` instead, the way ``ls -b`` does.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = ord(match.group())
    # Surrogate escapes (U+DC80..U+DCFF) stand for the undecodable byte itself.
    return (
        f"\\x{char - 0xDC00:02x}"
        if 0xDC80 <= char <= 0xDCFF
        else f"\\x{char:02x}"
        if char < 0x100
        else f"\\u{char:04x}"
    )


def printable(text: object, *, keep_newlines: bool = False) -> str:
    value = str(text)
    if not keep_newlines:
        value = value.replace("\n", "\\n").replace("\t", "\\t")
    return _UNSAFE.sub(_escape, value)


def markdown_cell(value: object) -> str:
    """Text for a Markdown table cell: a pipe would end the cell, a newline the row."""
    return printable(value).replace("|", "\\|")


def markdown_code(value: object) -> str:
    """A Markdown code span of ``value`` (pass it through ``markdown_cell`` for a table).

    A backtick inside would end the span early and let the rest of a file name
    be read as Markdown (links, emphasis, HTML), so it becomes a quote.
    """
    return "`" + printable(value).replace("`", "'") + "`"
