"""Every result type in every format, compared with the files under golden/.

A change to a presenter shows here as a diff of the golden file. After a change
you meant, rewrite them with ``NEXLAB_UPDATE_GOLDEN=1 pytest tests/report`` and
read the diff before committing it. Paths under the test's temporary directory
are written as ``@WORK@``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nexlab import report
from tests.report.results import Results

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("NEXLAB_UPDATE_GOLDEN") == "1"
NAMES = ("audit", "diff", "same", "deep", "repro", "boot-ok", "boot-failed", "populate", "build")
WITH_JSON = ("audit", "diff", "same", "deep", "repro", "boot-ok", "boot-failed", "build")
FORMATS = {"text": "txt", "markdown": "md", "html": "html", "json": "json"}
CASES = [(name, fmt) for name in NAMES for fmt in FORMATS if fmt != "json" or name in WITH_JSON]


def _render(results: Results, name: str, fmt: str) -> str:
    result = results.named()[name]
    rendered = report.json_text(result) if fmt == "json" else report.dispatch.FORMATS[fmt](result)
    return rendered.replace(str(results.work), "@WORK@")


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=[f"{n}.{FORMATS[f]}" for n, f in CASES])
def test_matches_golden(results: Results, name: str, fmt: str) -> None:
    golden = GOLDEN / f"{name}.{FORMATS[fmt]}"
    rendered = _render(results, name, fmt)
    if UPDATE:
        golden.write_text(rendered, encoding="utf-8")
        return
    assert golden.is_file(), f"{golden} is missing: run NEXLAB_UPDATE_GOLDEN=1 pytest tests/report"
    assert rendered == golden.read_text(encoding="utf-8"), f"{golden.name} differs (NEXLAB_UPDATE_GOLDEN=1 rewrites it)"


def test_no_golden_file_is_left_over() -> None:
    expected = {f"{name}.{FORMATS[fmt]}" for name, fmt in CASES}
    assert {p.name for p in GOLDEN.iterdir()} == expected
