"""The service check of the reproducible build, with the image's records kept for the cache.

``check_service`` walks the whole image for the audit's records; a clean build
does that walk once and keeps the records with the cache entry, so a build from
the entry evaluates the same rules on the same facts, where only the agent and
its directory are read again, from the image just made.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
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
    from nexlab.audit.inventory import file_reader, record_from_entry
    from nexlab.builder.service_check import _evaluate, _problem
    from nexlab.image import open_image

    with open_image(image) as fs:
        fresh: dict[str, FileRecord | None] = {}
        for path in _FRESH:
            entry = fs.lookup(path)
            fresh[path] = None if entry is None else record_from_entry(entry, None, None)
        current = _Overlaid(records, fresh)
        found = _evaluate(current, file_reader(fs, current, rules.READ_LIMIT, []))
    problem = _problem(found, built_for)
    if problem is not None:
        raise problem


#: A cache entry's records, beside its entry.json (which holds their sha256): a lookup of the
#: entry (``nexlab cache ls`` too) does not parse them, and a build parses them once.
RECORDS = "records.json"


def write_records(directory: Path, records: Mapping[str, FileRecord]) -> str:
    """``records`` into ``directory``/RECORDS; their sha256, for the entry's record."""
    data = json.dumps(records_to_json(records), separators=(",", ":")).encode()
    (directory / RECORDS).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_records(directory: Path, sha256: str) -> Mapping[str, FileRecord]:
    """What ``write_records`` wrote there; ``ValueError`` unless it still has ``sha256``."""
    try:
        data = (directory / RECORDS).read_bytes()
    except OSError as exc:
        raise ValueError(f"{RECORDS}: {exc.strerror}") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{RECORDS} does not match its digest")
    return records_from_json(json.loads(data))


def records_to_json(records: Mapping[str, FileRecord]) -> dict[str, Any]:
    """Columns and rows (a third of the size of one object per record)."""
    from nexlab.audit.inventory import COLUMNS

    return {"columns": list(COLUMNS), "rows": [[getattr(r, c) for c in COLUMNS] for r in records.values()]}


def records_from_json(data: Mapping[str, Any]) -> Mapping[str, FileRecord]:
    """The records ``records_to_json`` wrote; each is made when first read (a service check
    reads a few dozen of thousands). ``ValueError`` for another shape."""
    from nexlab.audit.inventory import COLUMNS

    if list(data.get("columns") or []) != list(COLUMNS):
        raise ValueError("records of another shape")
    rows = data["rows"]
    if not isinstance(rows, list) or not all(isinstance(row, list) and len(row) == len(COLUMNS) for row in rows):
        raise ValueError("records of another shape")
    return _Rows({row[0]: row for row in rows})


class _Rows(Mapping[str, "FileRecord"]):
    def __init__(self, rows: dict[str, list[Any]]) -> None:
        self._rows = rows
        self._made: dict[str, FileRecord] = {}

    def __getitem__(self, path: str) -> FileRecord:
        record = self._made.get(path)
        if record is None:
            from nexlab.audit.inventory import COLUMNS, FileRecord

            record = FileRecord(**dict(zip(COLUMNS, self._rows[path], strict=True)))
            self._made[path] = record
        return record

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


class _Overlaid(Mapping[str, "FileRecord"]):
    """``base`` with the paths of ``fresh`` replaced (None: gone), without copying ``base``."""

    def __init__(self, base: Mapping[str, FileRecord], fresh: Mapping[str, FileRecord | None]) -> None:
        self._base = base
        self._fresh = fresh

    def __getitem__(self, path: str) -> FileRecord:
        if path in self._fresh:
            record = self._fresh[path]
            if record is None:
                raise KeyError(path)
            return record
        return self._base[path]

    def __iter__(self) -> Iterator[str]:
        yield from (path for path in self._base if path not in self._fresh)
        yield from (path for path, record in self._fresh.items() if record is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)
