"""The repro report as JSON: verdict, runs and, for each differing run, the diff contract."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from nexlab.report.diff_json import diff_to_json

if TYPE_CHECKING:
    from nexlab.repro.model import ReproResult

REPRO_JSON_VERSION = 1


def repro_to_json(result: ReproResult) -> dict[str, Any]:
    return {
        "version": REPRO_JSON_VERSION,
        "name": result.name,
        "mode": result.mode,
        "identical": result.identical,
        "verdict": result.verdict,
        "inputs": dict(result.inputs),
        "runs": [
            {
                "run": run.index + 1,
                "sha256": run.sha256,
                "seconds": round(run.seconds, 2),
                "variation": run.variation.describe(),
            }
            for run in result.runs
        ],
        "diffs": [{"run_a": 1, "run_b": index + 1, **diff_to_json(d)} for index, d in result.diffs],
    }


def repro_json(result: ReproResult) -> str:
    return json.dumps(repro_to_json(result), sort_keys=True, indent=2) + "\n"
