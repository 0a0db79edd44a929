"""The service check of the reproducible build, with the image's records kept for the cache.

``check_service`` walks the whole image for the audit's records; a clean build
does that walk once and keeps the records with the cache entry, so a build from
the entry evaluates the same rules on the same facts, where only the agent and
its directory are read again, from the image just made.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexlab.builder.init import InitKind
from nexlab.builder.reproducible.agent import AGENT

if TYPE_CHECKING:
    from nexlab.audit.inventory import FileRecord

#: What the agent step changes: read from the image on every build.
_FRESH = (AGENT, AGENT.rsplit("/", 1)[0])


def image_records(image: Path) -> dict[str, FileRecord]:
    from nexlab.audit.inventory import record_from_entry
    from nexlab.image import open_image

    with open_image(image) as fs:
        return {e.path: record_from_entry(e, None, None) for e in fs.walk()}


def check_service_with(image: Path, built_for: InitKind, records: Mapping[str, FileRecord]) -> None:
    """``check_service(image, built_for)`` given the image's ``records`` but for the agent's,
    which are read here."""
    from nexlab.audit import findings as rules
    from nexlab.audit.audit import _reader
    from nexlab.audit.inventory import record_from_entry
    from nexlab.builder.service_check import _evaluate, _problem
    from nexlab.image import open_image

    current = dict(records)
    with open_image(image) as fs:
        for path in _FRESH:
            entry = fs.lookup(path)
            if entry is None:
                current.pop(path, None)
            else:
                current[path] = record_from_entry(entry, None, None)
        found = _evaluate(current, _reader(fs, current, rules.READ_LIMIT, []))
    problem = _problem(found, built_for)
    if problem is not None:
        raise problem


def records_to_json(records: Mapping[str, FileRecord]) -> dict[str, Any]:
    """Columns and rows (a third of the size of one object per record)."""
    from nexlab.audit.inventory import COLUMNS

    return {"columns": list(COLUMNS), "rows": [[getattr(r, c) for c in COLUMNS] for r in records.values()]}


def records_from_json(data: Mapping[str, Any]) -> dict[str, FileRecord]:
    from nexlab.audit.inventory import COLUMNS, FileRecord

    if list(data.get("columns") or []) != list(COLUMNS):
        raise ValueError("records of another shape")
    records = (FileRecord(**dict(zip(COLUMNS, row, strict=True))) for row in data["rows"])
    return {r.path: r for r in records}
