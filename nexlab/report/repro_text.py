"""The repro report for a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexlab.report.diff_text import diff_text

if TYPE_CHECKING:
    from nexlab.repro.model import ReproResult


def repro_text(result: ReproResult, *, limit: int = 20) -> str:
    lines = [f"repro {result.name} ({result.mode} build, {len(result.runs)} runs): {result.verdict}"]
    for run in result.runs:
        v = run.variation
        lines.append(
            f"  run {run.index + 1}  {run.sha256}  {run.seconds:5.1f} s  umask {v.umask:04o}  TZ={v.tz}  "
            f"{v.locale}  {v.build_path}"
        )
    for index, d in result.diffs:
        lines.append(f"run 1 against run {index + 1}:")
        lines += ["  " + line for line in diff_text(d, limit=limit).splitlines()]
    return "\n".join(lines)
