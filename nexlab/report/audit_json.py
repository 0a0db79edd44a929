"""The JSON contract of ``nexlab audit --json`` (documented in README.md, "JSON contracts").

Keys are sorted and the output is ASCII: a path that is not valid UTF-8 keeps
its bytes as surrogate escapes (``\\udcXX``), which a reader turns back into
the exact bytes with ``os.fsencode``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexlab.audit.audit import Audit


def audit_json_dict(audit: Audit) -> dict[str, Any]:
    from nexlab.audit.audit import JSON_VERSION

    return {
        "version": JSON_VERSION,
        "image": str(audit.image),
        "filesystem": audit.filesystem_json(),
        "files": [record.to_json() for record in audit.files],
        "packages": [package.to_json() for package in audit.packages],
        "budget": audit.budget.to_json(),
        "findings": [finding.to_json() for finding in audit.findings],
        "fsck": audit.fsck.to_json(),
        "warnings": list(audit.warnings),
        "hashed": audit.hashed,
        "architecture": audit.architecture.to_json(),
    }


def audit_json(audit: Audit, *, indent: int | None = None) -> str:
    return json.dumps(audit_json_dict(audit), sort_keys=True, indent=indent, ensure_ascii=True)


def audit_json_file(audit: Audit) -> str:
    """What ``--json-file`` writes: one key a line, so a diff of two reports reads well."""
    return audit_json(audit, indent=1) + "\n"
