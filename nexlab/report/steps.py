"""Presenters for build-step results: terminal text and Jupyter HTML."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nexlab.builder.results import StepResult


def step_text(result: StepResult) -> str:
    facts = result.facts()
    width = max((len(label) for label, _ in facts), default=0)
    lines = [f"{result.step}:"]
    lines += [f"  {label.ljust(width)}  {value}" for label, value in facts]
    return "\n".join(lines)


def step_html(result: StepResult) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(label)}</th>"
        f"<td style='text-align:left;font-family:monospace'>{html.escape(value)}</td></tr>"
        for label, value in result.facts()
    )
    tail = ""
    if result.log_tail:
        lines = html.escape("\n".join(result.log_tail[-15:]))
        tail = (
            "<details><summary>log (last lines)</summary>"
            f"<pre style='font-size:85%;max-height:20em;overflow:auto'>{lines}</pre></details>"
        )
    return f"<div class='nexlab-step'><b>✔ {html.escape(result.step)}</b><table>{rows}</table>{tail}</div>"
