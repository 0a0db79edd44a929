"""The diff as JSON: the contract of issue 4, plus sizes, packages and the cause catalogue.

``identical_bytes``, ``identical_content``, ``filesystem`` (the fields that differ:
``{field: {a, b, cause}}``) and ``changes`` (``{path, change, fields, cause}``).
Causes are ids into ``causes`` so a thousand timestamp changes do not repeat one
sentence a thousand times. Keys are sorted; ``version`` changes when a field's
meaning does.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexlab.diff.model import Diff, SizeRow

DIFF_JSON_VERSION = 1


def diff_to_json(diff: Diff) -> dict[str, Any]:
    return {
        "version": DIFF_JSON_VERSION,
        "a": str(diff.a),
        "b": str(diff.b),
        "identical_bytes": diff.identical_bytes,
        "identical_content": diff.identical_content,
        "filesystem": {f.field: {"a": f.a, "b": f.b, "cause": f.cause} for f in diff.filesystem},
        "changes": [
            {"path": c.path, "change": c.change, "fields": list(c.fields), "cause": c.cause}
            for c in diff.change_records
        ],
        "counts": diff.counts(),
        "entries": {"a": diff.entries_a, "b": diff.entries_b},
        "causes": {key: {"explanation": c.explanation, "fix": c.fix} for key, c in diff.causes.items()},
        "size_by_directory": [_size(r, "directory") for r in diff.directory_size_records if r.delta],
        "size_by_package": [_size(r, "package") for r in diff.package_size_records if r.delta],
        # Every field of a PackageChange, under its own name.
        "packages": [dataclasses.asdict(p) for p in diff.package_records],
        "notes": list(diff.notes),
        "deep": None
        if diff.deep is None
        else {"files": diff.deep.files, "note": diff.deep.note, "text": diff.deep.text},
    }


def _size(row: SizeRow, label: str) -> dict[str, Any]:
    percent = row.percent
    return {
        label: row.name,
        "a": row.a,
        "b": row.b,
        "delta": row.delta,
        "percent": None if percent is None else round(percent, 2),
    }


def diff_json(diff: Diff) -> str:
    return json.dumps(diff_to_json(diff), sort_keys=True, indent=2) + "\n"
