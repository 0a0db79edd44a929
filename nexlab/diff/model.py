"""What a diff found: plain data, no rendering.

``Diff`` keeps tuples of small frozen records, each named ``*_records``
(``change_records``, ``directory_size_records``, ``package_size_records``,
``package_records``); its pandas DataFrames (``changes``, ``size_by_directory``,
``size_by_package``, ``package_changes``) are built from them on first use,
and ``__str__``/``_repr_html_`` come from ``nexlab.display`` (the presenters import
this module, not the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.display import Displayable, Summarized
from nexlab.sizes import format_size

if TYPE_CHECKING:
    import pandas as pd

#: The per-path fields compared, in the order they are reported.
FIELDS = ("type", "mode", "uid", "gid", "size", "sha256", "target", "xattrs", "mtime")


@dataclass(frozen=True)
class Cause(Summarized):
    """A known reason for a difference and how to remove it."""

    id: str
    explanation: str
    fix: str

    def summary(self) -> str:
        return f"{self.id}: {self.explanation}"


@dataclass(frozen=True)
class Change(Summarized):
    path: str
    #: ``added``, ``removed`` or ``modified``.
    change: str
    #: The differing fields of a ``modified`` path, in ``FIELDS`` order; empty otherwise.
    fields: tuple[str, ...] = ()
    cause: str | None = None
    #: The file type on either side (for added/removed, the one that exists).
    type: str = ""
    size_a: int | None = None
    size_b: int | None = None
    #: Short old → new values of the differing fields, for people (not for the JSON contract).
    detail: tuple[tuple[str, str, str], ...] = ()

    @property
    def mtime_only(self) -> bool:
        return self.change == "modified" and self.fields == ("mtime",)

    def summary(self) -> str:
        fields = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.change} {self.path}{fields}" + (f" cause {self.cause}" if self.cause else "")


@dataclass(frozen=True)
class FilesystemChange(Summarized):
    field: str
    a: str
    b: str
    cause: str | None = None

    def summary(self) -> str:
        return f"{self.field}: {self.a} → {self.b}"


@dataclass(frozen=True)
class SizeRow(Summarized):
    """Allocated bytes on each side, for one directory or package."""

    name: str
    a: int
    b: int

    @property
    def delta(self) -> int:
        return self.b - self.a

    @property
    def percent(self) -> float | None:
        return None if self.a == 0 else 100.0 * (self.b - self.a) / self.a

    def summary(self) -> str:
        sign = "+" if self.delta >= 0 else "-"
        return f"{self.name}: {format_size(self.a)} → {format_size(self.b)} ({sign}{format_size(abs(self.delta))})"


@dataclass(frozen=True)
class PackageChange(Summarized):
    name: str
    manager: str
    #: ``added``, ``removed``, ``upgraded``, ``downgraded`` or ``changed`` (version order unknown).
    change: str
    version_a: str | None
    version_b: str | None
    size_a: int
    size_b: int

    def summary(self) -> str:
        return f"{self.name} ({self.manager}) {self.change}: {self.version_a or '-'} → {self.version_b or '-'}"


@dataclass(frozen=True)
class DeepResult(Summarized):
    """diffoscope's view of the files whose content differs."""

    files: int
    text: str = ""
    html: str = ""
    note: str = ""
    seconds: float = 0.0

    def summary(self) -> str:
        said = f"{len(self.text.splitlines())} lines of text" if self.text else self.note or "no output"
        return f"diffoscope on {self.files} files: {said}"


@dataclass(frozen=True)
class Diff(Displayable):
    a: Path
    b: Path
    identical_bytes: bool
    filesystem: tuple[FilesystemChange, ...] = ()
    change_records: tuple[Change, ...] = ()
    directory_size_records: tuple[SizeRow, ...] = ()
    package_size_records: tuple[SizeRow, ...] = ()
    package_records: tuple[PackageChange, ...] = ()
    causes: dict[str, Cause] = field(default_factory=dict)
    entries_a: int = 0
    entries_b: int = 0
    notes: tuple[str, ...] = ()
    deep: DeepResult | None = None
    seconds: float = 0.0

    @property
    def identical_content(self) -> bool:
        return not self.change_records

    @property
    def real_changes(self) -> tuple[Change, ...]:
        """Everything but the mtime-only changes."""
        return tuple(c for c in self.change_records if not c.mtime_only)

    @property
    def mtime_only(self) -> tuple[Change, ...]:
        return tuple(c for c in self.change_records if c.mtime_only)

    def summary(self) -> str:
        if self.identical_bytes:
            verdict = "identical bytes"
        elif self.identical_content:
            verdict = "same content, different bytes"
        else:
            verdict = "content differs: " + ", ".join(
                f"{n} {k.replace('_', '-')}" for k, n in self.counts().items() if n
            )
        return f"{self.a.name} → {self.b.name}: {verdict}"

    def counts(self) -> dict[str, int]:
        counts = {"added": 0, "removed": 0, "modified": 0, "mtime_only": 0}
        for change in self.change_records:
            counts["mtime_only" if change.mtime_only else change.change] += 1
        return counts

    @cached_property
    def changes(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            {
                "path": c.path,
                "change": c.change,
                "fields": ",".join(c.fields),
                "mtime_only": c.mtime_only,
                "type": c.type,
                "size_a": c.size_a,
                "size_b": c.size_b,
                "cause": c.cause,
            }
            for c in self.change_records
        ]
        columns = ["path", "change", "fields", "mtime_only", "type", "size_a", "size_b", "cause"]
        return pd.DataFrame(rows, columns=columns)

    @cached_property
    def size_by_directory(self) -> pd.DataFrame:
        return _size_frame(self.directory_size_records, "directory")

    @cached_property
    def size_by_package(self) -> pd.DataFrame:
        return _size_frame(self.package_size_records, "package")

    @cached_property
    def package_changes(self) -> pd.DataFrame:
        import pandas as pd

        columns = ["name", "manager", "change", "version_a", "version_b", "size_a", "size_b", "delta"]
        rows = [
            {
                "name": p.name,
                "manager": p.manager,
                "change": p.change,
                "version_a": p.version_a,
                "version_b": p.version_b,
                "size_a": p.size_a,
                "size_b": p.size_b,
                "delta": p.size_b - p.size_a,
            }
            for p in self.package_records
        ]
        return pd.DataFrame(rows, columns=columns)

    def to_json(self) -> dict[str, object]:
        return self.to_json_dict()


def _size_frame(rows: tuple[SizeRow, ...], label: str) -> pd.DataFrame:
    import pandas as pd

    data = [{label: r.name, "a": r.a, "b": r.b, "delta": r.delta, "percent": r.percent} for r in rows]
    return pd.DataFrame(data, columns=[label, "a", "b", "delta", "percent"])
