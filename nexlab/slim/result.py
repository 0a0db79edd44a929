"""What ``slim()`` returns: bytes and files saved per category. Plain data, no rendering."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexlab.display import Displayable, Summarized
from nexlab.sizes import format_size


@dataclass(frozen=True)
class Saving(Summarized):
    category: str
    #: Non-directory entries removed, each inode once (as the audit counts its reclaimable files).
    files: int
    #: Allocated bytes of those files (an inode's blocks count when its last link goes): what
    #: the audit's budget calls reclaimable for the category.
    bytes: int
    #: Directories left empty and removed with them, and their blocks.
    directories: int = 0
    directory_bytes: int = 0

    @property
    def saved(self) -> int:
        return self.bytes + self.directory_bytes

    def summary(self) -> str:
        return f"{self.category}: {format_size(self.saved)} in {self.files} files"

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "files": self.files,
            "bytes": self.bytes,
            "directories": self.directories,
            "directory_bytes": self.directory_bytes,
        }


@dataclass(frozen=True)
class SlimResult(Displayable):
    seconds: float
    root: Path
    categories: tuple[str, ...]
    savings: tuple[Saving, ...]
    #: Files slim wrote into the tree (absolute, as in the image): its record, dpkg's filters.
    written: tuple[str, ...] = ()
    #: Package managers found (dpkg, apk): the record is written for them.
    managers: tuple[str, ...] = ()
    #: Directories slim made to hold what it wrote (``/etc/nexlab``).
    made_directories: tuple[str, ...] = ()

    step = "slim"

    def summary(self) -> str:
        return f"{', '.join(self.categories) or 'nothing'}: {format_size(self.bytes)} in {self.files} files saved"

    @property
    def bytes(self) -> int:
        """Every byte freed, directories' blocks included."""
        return sum(s.saved for s in self.savings)

    @property
    def files(self) -> int:
        return sum(s.files for s in self.savings)

    def saving(self, category: str) -> Saving:
        for saving in self.savings:
            if saving.category == category:
                return saving
        raise KeyError(category)

    @property
    def log_tail(self) -> tuple[str, ...]:
        return ()

    def facts(self) -> list[tuple[str, str]]:
        facts = [(s.category, f"{format_size(s.saved)} in {s.files} files") for s in self.savings]
        facts.append(("saved", f"{format_size(self.bytes)} in {self.files} files"))
        facts.append(("recorded in", ", ".join(self.written) or "-"))
        facts.append(("time", f"{self.seconds:.2f} s"))
        return facts

    def to_json(self) -> dict[str, Any]:
        return {
            "categories": list(self.categories),
            "savings": [s.to_json() for s in self.savings],
            "bytes": self.bytes,
            "files": self.files,
            "written": list(self.written),
            "managers": list(self.managers),
        }
