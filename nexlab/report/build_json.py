"""The JSON contracts of a build (``nexlab build --json``) and a boot check (``nexlab boot --json``).

Versioned objects a CI script can read (README.md, "JSON contracts"): what was
made and how long each step took, or whether the agent started and why not.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexlab.boot.result import BootResult
    from nexlab.builder.results import BuildResult

BUILD_JSON_VERSION = 1
BOOT_JSON_VERSION = 1


def build_to_json(result: BuildResult) -> dict[str, Any]:
    return {
        "version": BUILD_JSON_VERSION,
        "output": str(result.output),
        "size": result.size,
        "sha256": result.sha256,
        "image_sha256": result.image_sha256,
        "compressed_sha256": result.compressed_sha256,
        "slim": list(result.slim),
        "reproducible": result.reproducible,
        "manifest": str(result.manifest) if result.manifest else None,
        "seconds": round(result.seconds, 2),
        "steps": [{"step": step.step, "seconds": round(step.seconds, 2)} for step in result.steps],
    }


def boot_to_json(result: BootResult) -> dict[str, Any]:
    return {
        "version": BOOT_JSON_VERSION,
        "image": str(result.image),
        "ok": result.ok,
        "outcome": result.outcome.name.lower(),
        "reason": result.reason,
        "seconds_to_agent": None if result.seconds_to_agent is None else round(result.seconds_to_agent, 2),
        "seconds": round(result.seconds, 2),
        "accel": result.accel,
        "kvm_fallback": result.kvm_fallback,
        "machine": result.machine,
        "kernel": str(result.kernel),
        "initrd": str(result.initrd) if result.initrd else None,
        "cmdline": result.cmdline,
        "memory_mib": result.memory_mib,
        "console_log": str(result.console_log) if result.console_log else None,
        "last_lines": list(result.last_lines),
    }


def dumps(data: dict[str, Any]) -> str:
    """As every nexlab JSON file: sorted keys, indented, ASCII, one newline at the end."""
    return json.dumps(data, sort_keys=True, indent=2) + "\n"
