"""The terminal summary of an Audit: facts, where the space goes, findings with fixes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexlab.report.audit_facts import budget_facts, filesystem_facts
from nexlab.report.printable import printable
from nexlab.sizes import format_size

if TYPE_CHECKING:
    from nexlab.audit.audit import Audit

#: Paths listed under a finding before "+N more".
SHOWN_PATHS = 5


def _facts(title: str, facts: list[tuple[str, str]]) -> list[str]:
    width = max(len(label) for label, _ in facts)
    return [f"{title}:"] + [f"  {label.ljust(width)}  {value}" for label, value in facts]


def findings_text(audit: Audit) -> list[str]:
    if not audit.findings:
        return ["findings: none"]
    lines = [f"findings ({len(audit.findings)}):"]
    for finding in audit.findings:
        lines.append(f"  {finding.severity.value.upper():8} {finding.code}: {finding.message}")
        lines.append(f"           fix: {finding.fix}")
        if finding.paths:
            shown = ", ".join(finding.paths[:SHOWN_PATHS])
            more = len(finding.paths) - SHOWN_PATHS
            lines.append(f"           paths: {shown}" + (f" (+{more} more)" if more > 0 else ""))
    return lines


def audit_text(audit: Audit) -> str:
    budget = audit.budget
    lines = _facts("filesystem", filesystem_facts(audit))
    lines += _facts("space", budget_facts(audit))
    if budget.top_directories:
        lines.append("top directories:")
        lines += [f"  {format_size(n):>10}  {path}" for path, n in budget.top_directories[:10]]
    if budget.top_packages:
        lines.append("top packages:")
        lines += [f"  {format_size(n):>10}  {name}" for name, n in budget.top_packages[:10]]
    if audit.fsck.clean is True:
        lines.append("e2fsck -fn: clean")
    lines += findings_text(audit)
    if audit.warnings:
        lines.append("warnings:")
        lines += [f"  {warning}" for warning in audit.warnings]
    lines.append(f"audited in {audit.seconds:.2f} s")
    # Paths and messages come from the image: nothing in them may reach the terminal raw.
    return printable("\n".join(lines), keep_newlines=True)
