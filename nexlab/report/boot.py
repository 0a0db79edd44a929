"""Presenters for a boot check: terminal text and Jupyter HTML."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nexlab.boot.result import BootResult


def boot_facts(result: BootResult) -> list[tuple[str, str]]:
    facts = [
        ("image", str(result.image)),
        ("result", "agent started" if result.ok else f"FAILED: {result.reason}"),
    ]
    if result.ok:
        facts.append(("started by", result.reason.split(": ", 1)[-1]))
    if result.seconds_to_agent is not None:
        facts.append(("to agent", f"{result.seconds_to_agent:.1f} s"))
    accel = result.accel if result.kvm_fallback is None else f"{result.accel} (KVM: {result.kvm_fallback})"
    facts += [
        ("VM", f"{result.machine}, {accel}, {result.memory_mib} MiB"),
        ("kernel", str(result.kernel)),
        ("initrd", str(result.initrd) if result.initrd else "none"),
        ("cmdline", result.cmdline),
        ("console log", str(result.console_log) if result.console_log else "not kept (use --log FILE)"),
        ("time", f"{result.seconds:.1f} s"),
    ]
    return facts


def boot_text(result: BootResult, *, tail: int = 15) -> str:
    facts = boot_facts(result)
    width = max(len(label) for label, _ in facts)
    lines = ["boot:"] + [f"  {label.ljust(width)}  {value}" for label, value in facts]
    if not result.ok and result.last_lines:
        lines.append("  last console lines:")
        lines += [f"    | {line}" for line in result.last_lines[-tail:]]
    return "\n".join(lines)


def boot_html(result: BootResult) -> str:
    mark, colour = ("✔", "#1a7f37") if result.ok else ("✘", "#cf222e")
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(label)}</th>"
        f"<td style='text-align:left;font-family:monospace'>{html.escape(value)}</td></tr>"
        for label, value in boot_facts(result)
    )
    console = ""
    if result.last_lines:
        text = html.escape("\n".join(result.last_lines))
        opened = "" if result.ok else " open"
        console = (
            f"<details{opened}><summary>console (last lines)</summary>"
            f"<pre style='font-size:85%;max-height:20em;overflow:auto'>{text}</pre></details>"
        )
    return f"<div class='nexlab-boot'><b style='color:{colour}'>{mark} boot</b><table>{rows}</table>{console}</div>"
