"""A Markdown summary of an Audit, for a CI job summary or a pull request comment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.report.audit_facts import budget_facts, filesystem_facts
from nexlab.report.printable import markdown_cell, markdown_code
from nexlab.sizes import format_size

if TYPE_CHECKING:
    from nexlab.audit.audit import Audit

SHOWN_PATHS = 5


cell = markdown_cell
code = markdown_code


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def audit_markdown(audit: Audit) -> str:
    worst = audit.worst()
    lines = [
        f"# nexlab audit: {code(cell(audit.image.name))}",
        "",
        f"**{len(audit.findings)} finding(s)**" + (f", worst: **{worst.value}**" if worst else "") + ".",
        "",
        "## Findings",
        "",
    ]
    if audit.findings:
        rows: list[list[object]] = []
        for f in audit.findings:
            paths = ", ".join(code(p) for p in f.paths[:SHOWN_PATHS])
            if len(f.paths) > SHOWN_PATHS:
                paths += f" (+{len(f.paths) - SHOWN_PATHS} more)"
            rows.append([f.severity.value, code(f.code), f.message, f.fix, paths])
        lines += _table(["severity", "code", "finding", "fix", "paths"], rows)
    else:
        lines += ["None.", ""]
    lines += ["## Space", ""]
    lines += _table(["", ""], [list(fact) for fact in budget_facts(audit)])
    budget = audit.budget
    if budget.top_directories:
        lines += ["### Top directories", ""]
        lines += _table(["directory", "allocated"], [[code(p), format_size(n)] for p, n in budget.top_directories])
    if audit.packages:
        lines += ["### Top packages", ""]
        top = sorted(audit.packages, key=lambda p: (-p.size, p.name))[:15]
        lines += _table(
            ["package", "version", "manager", "declared", "in this image", "files"],
            [[p.name, p.version, p.manager, format_size(p.declared_size), format_size(p.size), p.files] for p in top],
        )
    lines += ["## Filesystem", ""]
    lines += _table(["", ""], [list(fact) for fact in filesystem_facts(audit)])
    if audit.warnings:
        lines += ["## Warnings", ""] + [f"- {cell(w)}" for w in audit.warnings] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_markdown(audit: Audit, destination: str | os.PathLike[str]) -> Path:
    path = Path(destination)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(audit_markdown(audit), encoding="utf-8")
    return path
