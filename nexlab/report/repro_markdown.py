"""The repro report as Markdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexlab.report.diff_markdown import diff_markdown

if TYPE_CHECKING:
    from nexlab.repro.model import ReproResult


def repro_markdown(result: ReproResult) -> str:
    lines = [
        f"# repro {result.name}",
        "",
        f"**{result.verdict}** ({result.mode} build, {len(result.runs)} runs)",
        "",
        "| run | sha256 | seconds | umask | TZ | locale | build path |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in result.runs:
        v = run.variation
        lines.append(
            f"| {run.index + 1} | `{run.sha256[:16]}…` | {run.seconds:.1f} | {v.umask:04o} | {v.tz} | {v.locale} "
            f"| `{v.build_path}` |"
        )
    lines.append("")
    for index, d in result.diffs:
        lines.append(diff_markdown(d, title=f"run 1 against run {index + 1}"))
    return "\n".join(lines) + "\n"
