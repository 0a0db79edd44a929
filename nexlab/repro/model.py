"""What a reproducibility check found: the runs, their hashes and the diffs. No rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nexlab.diff.model import Diff
from nexlab.display import Displayable, Summarized


@dataclass(frozen=True)
class Variation(Summarized):
    """How one run's surroundings differ from the others' (in the spirit of reprotest)."""

    build_path: str
    umask: int
    tz: str
    locale: str

    def describe(self) -> dict[str, str]:
        return {
            "build_path": self.build_path,
            "umask": f"{self.umask:04o}",
            "tz": self.tz,
            "locale": self.locale,
        }

    def summary(self) -> str:
        return f"{self.build_path} umask {self.umask:04o} TZ {self.tz} {self.locale}"


@dataclass(frozen=True)
class RunResult(Summarized):
    index: int
    variation: Variation
    output: Path
    sha256: str
    seconds: float
    started: float

    def summary(self) -> str:
        return f"run {self.index}: {self.output.name} sha256 {self.sha256[:16]}… in {self.seconds:.1f} s"


@dataclass(frozen=True)
class ReproResult(Displayable):
    name: str
    #: ``reproducible`` (mkfs.ext4 -d, no mount) or ``plain`` (through a loop mount).
    mode: str
    runs: tuple[RunResult, ...]
    #: (run index, diff of run 0 against it) for every run whose bytes differ from run 0.
    diffs: tuple[tuple[int, Diff], ...] = ()
    inputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        return f"{self.name} ({self.mode}, {len(self.runs)} runs): {self.verdict}"

    @property
    def identical(self) -> bool:
        return len({run.sha256 for run in self.runs}) == 1

    @property
    def verdict(self) -> str:
        if self.identical:
            return "reproducible: all runs are bit-identical"
        if all(d.identical_content for _, d in self.diffs):
            return "not reproducible: same content, different bytes"
        return "not reproducible: the content differs"
