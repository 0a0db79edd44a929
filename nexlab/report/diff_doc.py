"""A Diff as a document: verdict, counts, filesystem fields, changes, sizes, packages, causes, diffoscope.

Built once; the text, Markdown and HTML writers show the same sections (the
Markdown used to drift: no size tables, no mtime-only list, no deep output).
"""

from __future__ import annotations

from nexlab.diff.model import Change, Diff, SizeRow
from nexlab.report.diff_json import diff_json, diff_to_json
from nexlab.report.dispatch import document, json_dict, json_text
from nexlab.report.document import Code, Document, Facts, Group, Notes, Paragraph, Preformatted, Section, Table
from nexlab.report.document import Verdict as VerdictLine
from nexlab.sizes import format_size

json_dict.register(Diff)(diff_to_json)
json_text.register(Diff)(diff_json)

#: Rows of the size tables: the largest changes, not every directory.
SIZE_ROWS = 50
#: Lines of diffoscope's text shown outside the HTML.
DEEP_LINES = 200
_CHANGES = ["change", "path", "fields", "A → B", "cause"]


def verdict(diff: Diff) -> str:
    if diff.identical_bytes:
        return "identical (bit for bit)"
    if diff.identical_content:
        return "same content, different bytes"
    return "content differs"


def verdict_state(diff: Diff) -> str:
    return "ok" if diff.identical_bytes else "warn" if diff.identical_content else "bad"


def counts_sentence(diff: Diff) -> str:
    counts = diff.counts()
    return (
        f"{counts['added']} added, {counts['removed']} removed, {counts['modified']} modified, "
        f"{counts['mtime_only']} mtime only"
    )


def _delta(value: int) -> str:
    return ("+" if value >= 0 else "-") + format_size(abs(value))


def _change_row(c: Change) -> tuple[object, ...]:
    values = ", ".join(f"{name} {old} → {new}" for name, old, new in c.detail)
    return (c.change, Code(c.path), ", ".join(c.fields) or c.type, Code(values), c.cause or "")


def _sizes(title: str, label: str, rows: tuple[SizeRow, ...]) -> Table:
    changed = [r for r in rows if r.delta]
    return Table(
        title,
        [label, "A", "B", "Δ", "%"],
        [
            (
                Code(r.name),
                format_size(r.a),
                format_size(r.b),
                _delta(r.delta),
                "new" if r.percent is None else f"{r.percent:+.1f} %",
            )
            for r in changed
        ],
        numeric=[1, 2, 3, 4],
        limit=SIZE_ROWS,
    )


def diff_sections(diff: Diff) -> list[Section]:
    sections: list[Section] = [
        Facts("", [("A", f"{diff.a} ({diff.entries_a} entries)"), ("B", f"{diff.b} ({diff.entries_b} entries)")]),
        VerdictLine(verdict(diff), verdict_state(diff)),
        Facts(
            "summary",
            [
                ("bytes", "identical" if diff.identical_bytes else "differ"),
                ("filesystem", f"{len(diff.filesystem)} superblock fields differ"),
                ("content", counts_sentence(diff)),
            ],
        ),
        Table(
            "filesystem",
            ["field", "A", "B", "cause"],
            [(f.field, Code(f.a), Code(f.b), f.cause or "") for f in diff.filesystem],
        ),
        Table(
            "changes",
            _CHANGES,
            [_change_row(c) for c in diff.real_changes],
            kind_column=0,
            more="--json lists them all",
        ),
    ]
    if diff.mtime_only:
        sections.append(
            Group(
                f"{len(diff.mtime_only)} paths differ only in mtime [timestamps]",
                [Table("mtime only", _CHANGES, [_change_row(c) for c in diff.mtime_only], kind_column=0)],
                folded=True,
            )
        )
    sections += [
        Table(
            "packages",
            ["package", "manager", "change", "A", "B", "size Δ"],
            [
                (
                    p.name,
                    p.manager,
                    p.change,
                    Code(p.version_a or "-"),
                    Code(p.version_b or "-"),
                    _delta(p.size_b - p.size_a),
                )
                for p in diff.package_records
            ],
            numeric=[5],
        ),
        _sizes("size by directory", "directory", diff.directory_size_records),
        _sizes("size by package", "package", diff.package_size_records),
        Table("causes", ["cause", "why", "fix"], [(Code(key), c.explanation, c.fix) for key, c in diff.causes.items()]),
    ]
    if diff.deep is not None:
        deep: list[Section] = [Paragraph(diff.deep.note)] if diff.deep.note else []
        if diff.deep.text or diff.deep.html:
            deep.append(Preformatted("diffoscope", diff.deep.text, lines=DEEP_LINES, open=True, page=diff.deep.html))
        sections.append(Group(f"diffoscope ({diff.deep.files} files)", deep))
    sections.append(Notes("notes", list(diff.notes)))
    return sections


@document.register(Diff)
def diff_document(diff: Diff) -> Document:
    return Document(title="nexlab diff", sections=diff_sections(diff))
