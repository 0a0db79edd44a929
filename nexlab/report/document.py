"""The document model every report is built as, once, and that the writers render.

A result (an Audit, a Diff, a ReproResult, a BootResult, a build step) becomes a
``Document``: a title and a list of sections. The text, Markdown and HTML writers
(``nexlab.report.writers``) own how each kind looks, what is escaped and how, and
how many rows a table shows before "… and N more". Strings here are raw, straight
from the image: escaping happens in the writer, at the last moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: A table cell: a value, or ``Code(value)`` for a path, a digest or a version.
Cell = object


def heading(title: str) -> str:
    """A title as HTML and Markdown headings show it: a capital first letter (text keeps it as is)."""
    return title[:1].upper() + title[1:]


@dataclass(frozen=True)
class Code:
    """A literal (a path, a digest): monospace, and in Markdown a code span."""

    value: object

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Facts:
    """Labelled values: ``label  value`` lines, a two-column table."""

    title: str
    rows: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Table:
    """Rows under headers. ``limit`` rows are shown, then a line that says how many more."""

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    #: Right-aligned columns (sizes, counts).
    numeric: Sequence[int] = ()
    limit: int | None = None
    #: Where the rows past ``limit`` can be seen, said after "… and N more".
    more: str = "see the JSON"
    #: Column whose value is a change kind (added/removed/modified): HTML colours it.
    kind_column: int | None = None


@dataclass(frozen=True)
class Verdict:
    """The one-line answer, coloured by ``state``: ``ok``, ``warn`` or ``bad``."""

    text: str
    state: str
    #: What the verdict rests on, said after it (in text and Markdown on the same line).
    detail: str = ""


@dataclass(frozen=True)
class Finding:
    severity: str
    code: str
    message: str
    fix: str
    paths: Sequence[str] = ()


@dataclass(frozen=True)
class Findings:
    title: str
    items: Sequence[Finding]
    #: Paths listed under a finding, per writer (text, Markdown, HTML), before "+N more".
    shown_paths: int = 5


@dataclass(frozen=True)
class Notes:
    """A list of sentences (warnings, notes, causes with their fixes)."""

    title: str
    items: Sequence[str]


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Node:
    """A box of a treemap: a label, its bytes, and the boxes inside it."""

    label: str
    size: int
    children: list[Node] = field(default_factory=list)
    #: Longer text for the tooltip (defaults to the label).
    title: str = ""


@dataclass(frozen=True)
class Treemap:
    """A picture of where the bytes are: drawn in HTML, a table of the largest boxes elsewhere."""

    title: str
    caption: str
    nodes: Sequence[Node]


@dataclass(frozen=True)
class Preformatted:
    """A block kept as it is (a log tail, diffoscope's text); ``lines`` caps it in text and Markdown."""

    title: str
    text: str
    lines: int | None = None
    #: Keep the last ``lines`` (a console's end says why a boot failed), not the first.
    tail: bool = False
    #: Shown open in HTML, and shown at all in text and Markdown (a folded block is HTML detail).
    open: bool = False
    #: HTML only: a whole page shown in a sandboxed frame instead of the text (diffoscope's report).
    page: str = ""


@dataclass(frozen=True)
class Group:
    """Sections under one heading; HTML folds it when ``folded`` (text and Markdown show it)."""

    title: str
    sections: Sequence[Section]
    folded: bool = False


Section = Facts | Table | Verdict | Findings | Notes | Paragraph | Treemap | Preformatted | Group


@dataclass(frozen=True)
class Document:
    title: str
    sections: Sequence[Section]
    #: Cards at the top of the HTML page (label, value, fraction for a bar or None).
    cards: Sequence[tuple[str, str, float | None]] = ()
    #: A last line in small print.
    footer: str = ""
    #: Compact: a build step or a boot check in a notebook (no page heading levels, no cards).
    compact: bool = False
    #: HTML: the mark and colour of a compact document's title (✔ green, ✘ red).
    ok: bool | None = None
