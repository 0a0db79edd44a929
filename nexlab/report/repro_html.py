"""The repro report as one self-contained HTML page (or a Jupyter fragment)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from nexlab.report.diff_html import CSS, diff_html, page

if TYPE_CHECKING:
    from nexlab.repro.model import ReproResult


def repro_html(result: ReproResult, *, standalone: bool = True) -> str:
    e = html.escape
    state = "ok" if result.identical else "bad"
    rows = "".join(
        f"<tr><td>{run.index + 1}</td><td><code>{e(run.sha256)}</code></td><td class='num'>{run.seconds:.1f} s</td>"
        f"<td>{run.variation.umask:04o}</td><td>{e(run.variation.tz)}</td><td>{e(run.variation.locale)}</td>"
        f"<td><code>{e(run.variation.build_path)}</code></td></tr>"
        for run in result.runs
    )
    inputs = "".join(f"<tr><th>{e(k)}</th><td><code>{e(v)}</code></td></tr>" for k, v in sorted(result.inputs.items()))
    parts = [
        f"<h1>repro {e(result.name)}</h1>",
        f"<p><span class='verdict {state}'>{e(result.verdict)}</span></p>",
        f"<p>{e(result.mode)} build, {len(result.runs)} runs, each with another build directory, umask, "
        "time zone and locale, at least a second apart.</p>",
        f"<table>{inputs}</table>",
        "<table><tr><th>run</th><th>sha256</th><th>time</th><th>umask</th><th>TZ</th><th>locale</th>"
        f"<th>build path</th></tr>{rows}</table>",
    ]
    for index, d in result.diffs:
        # The diff fragment brings its own <style>; strip it, the page has one already.
        fragment = diff_html(d, standalone=False, title=f"run 1 against run {index + 1}")
        parts.append(fragment.split("</style>", 1)[1])
    body = f"<div class='nexlab-diff'>{''.join(parts)}</div>"
    if not standalone:
        return f"<style>{CSS}</style>{body}"
    return page(f"nexlab repro {result.name}", body)
