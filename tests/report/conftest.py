"""Fixtures of the presenter tests: every result type, made once per session from generated images."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import require
from tests.report.results import Results, make_results


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    require(shutil.which("mkfs.ext4") is not None, "mkfs.ext4 (e2fsprogs)")
    return make_results(tmp_path_factory.mktemp("report-results"))
