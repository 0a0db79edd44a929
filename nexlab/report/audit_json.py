"""The JSON contract of ``nexlab audit --json`` (documented in README.md, "JSON contracts").

Keys are sorted and the output is ASCII: a path that is not valid UTF-8 keeps
its bytes as surrogate escapes (``\\udcXX``), which a reader turns back into
the exact bytes with ``os.fsencode``.

``iter_audit_json`` yields the document in chunks, the files a few thousand at a
time, so a million-file report is written as it is encoded instead of being one
string of hundreds of megabytes; the chunks join to exactly what ``json.dumps``
of ``audit_json_dict`` gives.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring_ascii as _quote  # what json.dumps(ensure_ascii=True) uses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexlab.audit.audit import Audit
    from nexlab.audit.inventory import FileRecord

#: Records per chunk: big enough that the write calls do not matter, small enough to stay small.
RECORDS_PER_CHUNK = 2000


def audit_json_dict(audit: Audit) -> dict[str, Any]:
    return {**_sections(audit), "files": [record.to_json() for record in audit.files]}


def _sections(audit: Audit) -> dict[str, Any]:
    """Every top-level key but ``files`` (the one that grows with the image): one list for both writers."""
    from nexlab.audit.audit import JSON_VERSION

    return {
        "version": JSON_VERSION,
        "image": str(audit.image),
        "filesystem": audit.filesystem_json(),
        "packages": [package.to_json() for package in audit.packages],
        "budget": audit.budget.to_json(),
        "findings": [finding.to_json() for finding in audit.findings],
        "fsck": audit.fsck.to_json(),
        "warnings": list(audit.warnings),
        "hashed": audit.hashed,
        "architecture": audit.architecture.to_json(),
    }


def iter_audit_json(audit: Audit, *, indent: int | None = None) -> Iterator[str]:
    """``audit_json(audit, indent=indent)`` in chunks (no trailing newline)."""
    sections: dict[str, Any] = {**_sections(audit), "files": None}  # files are streamed below

    def dumps(value: Any, level: int) -> str:
        text = json.dumps(value, sort_keys=True, indent=indent, ensure_ascii=True)
        # JSON strings never hold a raw newline, so this only indents the structure.
        return text.replace("\n", "\n" + " " * (indent * level)) if indent is not None else text

    if indent is None:
        open_, item_sep, close_ = "{", ", ", "}"
    else:
        open_, item_sep, close_ = "{\n" + " " * indent, ",\n" + " " * indent, "\n}"
    yield open_
    for number, key in enumerate(sorted(sections)):
        head = (item_sep if number else "") + json.dumps(key) + ": "
        if key != "files":
            yield head + dumps(sections[key], 1)
            continue
        if not audit.files:
            yield head + "[]"
            continue
        if indent is None:
            start, sep, end = "[", ", ", "]"
        else:
            start, sep, end = "[\n" + " " * (2 * indent), ",\n" + " " * (2 * indent), "\n" + " " * indent + "]"
        # A list of records per json.dumps call: its items come out joined by the separator
        # we need, one call per chunk instead of one per record (~40% of the time at 1M files).
        # The columns' dicts come with their keys sorted already; others are sorted here.
        presorted = _presorted(audit.files)
        first = True
        indented = _IndentedRecords(indent) if presorted and indent is not None else None
        for part in _record_chunks(audit.files):
            if indented is not None:
                body = sep.join(map(indented.text, part))
            elif indent is None:
                body = json.dumps(part, sort_keys=not presorted, ensure_ascii=True, check_circular=False)[1:-1]
            else:
                text = json.dumps(part, sort_keys=True, indent=indent, ensure_ascii=True, check_circular=False)
                # "[\n" + items at one level + "\n]", shifted one level more: items at two.
                body = text.replace("\n", "\n" + " " * indent)[2 + 2 * indent : -(2 + indent)]
            yield (head + start if first else sep) + body
            first = False
        yield end
    yield close_


class _IndentedRecords:
    """A file's JSON object as ``json.dumps(d, indent=i, sort_keys=True, ensure_ascii=True)`` writes it
    two levels deep, from a template: with an indent, json.dumps leaves its C encoder for the Python
    one (~20 µs a record, 20 s at a million files). Only for ``FileTable.json_dicts``: keys in
    sorted order, values None, int or str, and ``xattrs`` a dict of str sorted by name."""

    def __init__(self, indent: int) -> None:
        from nexlab.audit.table import JSON_KEYS

        self.keys = JSON_KEYS
        self.inner = ",\n" + " " * (4 * indent)
        self.close = "\n" + " " * (3 * indent) + "}"
        self.open = "{\n" + " " * (4 * indent)
        fields = ",\n".join(" " * (3 * indent) + '"' + key + '": {}' for key in JSON_KEYS)
        self.template = "{{\n" + fields + "\n" + " " * (2 * indent) + "}}"

    def text(self, record: dict[str, Any]) -> str:
        values = []
        for key in self.keys:
            value = record[key]
            if value is None:
                values.append("null")
            elif type(value) is int:
                values.append(str(value))
            elif type(value) is str:
                values.append(_quote(value))
            elif value:  # the xattrs
                items = self.inner.join(_quote(name) + ": " + _quote(digest) for name, digest in value.items())
                values.append(self.open + items + self.close)
            else:
                values.append("{}")
        return self.template.format(*values)


def _presorted(files: Sequence[FileRecord]) -> bool:
    from nexlab.audit.table import FileTable

    return isinstance(files, FileTable)


def _record_chunks(files: Sequence[FileRecord]) -> Iterator[list[dict[str, Any]]]:
    """The files' JSON objects, ``RECORDS_PER_CHUNK`` at a time (from the columns when they are)."""
    from nexlab.audit.table import FileTable

    dicts = files.json_dicts() if isinstance(files, FileTable) else (record.to_json() for record in files)
    while part := list(itertools.islice(dicts, RECORDS_PER_CHUNK)):
        yield part


def audit_json(audit: Audit, *, indent: int | None = None) -> str:
    return "".join(iter_audit_json(audit, indent=indent))


def iter_audit_json_file(audit: Audit) -> Iterator[str]:
    """``audit_json_file(audit)`` in chunks: what ``--json-file`` streams into the file."""
    yield from iter_audit_json(audit, indent=1)
    yield "\n"


def audit_json_file(audit: Audit) -> str:
    """What ``--json-file`` writes: one key a line, so a diff of two reports reads well."""
    return "".join(iter_audit_json_file(audit))
