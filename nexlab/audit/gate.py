"""The CI gate: size, headroom and severity rules an image must pass.

``--max-size`` applies to the image file (what Firecracker gets as its drive);
``--min-free`` to the space nex can write (free minus root-reserved), the same
number the budget reports; ``--fail-on`` to the worst finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nexlab.audit.findings import Severity
from nexlab.display import Summarized
from nexlab.sizes import format_size

if TYPE_CHECKING:
    from nexlab.audit.audit import Audit


@dataclass(frozen=True)
class Gate(Summarized):
    max_size: int | None = None
    min_free: int | None = None
    fail_on: Severity | None = None

    def summary(self) -> str:
        rules = [
            *([f"max-size {format_size(self.max_size)}"] if self.max_size is not None else []),
            *([f"min-free {format_size(self.min_free)}"] if self.min_free is not None else []),
            *([f"fail-on {self.fail_on.value}"] if self.fail_on is not None else []),
        ]
        return ", ".join(rules) or "no rules"


@dataclass(frozen=True)
class GateResult(Summarized):
    rule: str
    passed: bool
    detail: str

    def summary(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.rule}: {self.detail}"


def check(audit: Audit, gate: Gate) -> list[GateResult]:
    results = []
    budget = audit.budget
    if gate.max_size is not None:
        size = max(budget.image_bytes, budget.filesystem_bytes)
        results.append(
            GateResult(
                "max-size",
                size <= gate.max_size,
                f"image {format_size(size)} ({size} bytes), limit {format_size(gate.max_size)}",
            )
        )
    if gate.min_free is not None:
        free = budget.nex_free_bytes
        results.append(
            GateResult(
                "min-free",
                free >= gate.min_free,
                f"nex can use {format_size(free)} ({free} bytes), required {format_size(gate.min_free)}",
            )
        )
    if gate.fail_on is not None:
        threshold = gate.fail_on
        bad = [f for f in audit.findings if f.severity.rank >= threshold.rank]
        detail = (
            f"{len(bad)} finding(s) at {threshold.value} or worse: " + ", ".join(sorted({f.code for f in bad}))
            if bad
            else f"no finding at {threshold.value} or worse"
        )
        results.append(GateResult(f"fail-on {threshold.value}", not bad, detail))
    return results
