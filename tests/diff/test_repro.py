"""``nexlab repro``: real builds with varied surroundings; the report for both build paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexlab.builder.spec import BuildSpec
from nexlab.errors import InputError
from nexlab.repro import repro
from nexlab.repro.variations import applied, variation
from tests.conftest import nexlab_cli, scratch


@pytest.fixture(scope="module")
def sample_agent(module_tmp: Path) -> Path:
    """A private copy: an edit to the repository's sample agent meanwhile must not change run 2."""
    import shutil

    from tests.conftest import SAMPLE_AGENT

    agent = scratch(module_tmp, "agent") / "agent.sh"
    shutil.copyfile(SAMPLE_AGENT, agent)
    agent.chmod(0o755)
    return agent


@pytest.fixture(scope="module")
def base_id(docker_client, debian_base) -> str:  # type: ignore[no-untyped-def]
    return str(docker_client.images.get(debian_base).id)


def _repro(report: Path, agent: Path, image: str, *extra: str):  # type: ignore[no-untyped-def]
    return nexlab_cli(
        "repro", "--agent", str(agent), "--image", image, "--size", "200MiB", "--report", str(report),
        "--name", "test", "-q", *extra,
    )  # fmt: skip


@pytest.mark.docker
def test_reproducible_build_passes(tmp_path: Path, base_id: str, sample_agent: Path) -> None:
    result = _repro(tmp_path, sample_agent, base_id)
    assert result.returncode == 0, result.stderr
    assert "reproducible: all runs are bit-identical" in result.stdout
    data = json.loads((tmp_path / "repro-test.json").read_text())
    assert data["identical"] is True and data["mode"] == "reproducible" and data["diffs"] == []
    runs = data["runs"]
    assert len(runs) == 2 and runs[0]["sha256"] == runs[1]["sha256"]
    first, second = runs[0]["variation"], runs[1]["variation"]
    assert all(first[key] != second[key] for key in ("build_path", "umask", "tz", "locale"))
    page = (tmp_path / "repro-test.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "bit-identical" in page and "<script" not in page
    assert "reproducible: all runs are bit-identical" in (tmp_path / "repro-test.md").read_text()


@pytest.mark.docker
def test_plain_build_fails_and_explains(tmp_path: Path, base_id: str, sample_agent: Path, is_root: bool) -> None:
    result = _repro(tmp_path, sample_agent, base_id, "--plain")
    assert result.returncode == 1, result.stderr
    data = json.loads((tmp_path / "repro-test.json").read_text())
    assert data["identical"] is False and data["mode"] == "plain"
    (diff,) = data["diffs"]
    assert diff["run_b"] == 2 and diff["identical_bytes"] is False
    assert {"uuid", "hash_seed", "created"} <= set(diff["filesystem"])
    assert {"fs-uuid", "fs-hash-seed", "fs-times", "fs-mounted"} <= set(diff["causes"])
    # Directories written at build time carry the build's clock: mtime-only changes, explained.
    assert any(c["fields"] == ["mtime"] and c["cause"] == "timestamps" for c in diff["changes"])
    page = (tmp_path / "repro-test.html").read_text()
    assert "not reproducible" in page and "fs-uuid" in page and "E2FSPROGS_FAKE_TIME" in page


def test_bad_arguments_exit_2(tmp_path: Path, sample_agent: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory\n")
    for extra in (("--runs", "1"), ("--report", str(tmp_path / "a-file")), ("--report", str(tmp_path / "a-file/sub"))):
        result = nexlab_cli("repro", "--agent", str(sample_agent), *extra)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(InputError):
        repro(BuildSpec.of(sample_agent), runs=0)


def test_report_directory_is_made(tmp_path: Path, sample_agent: Path) -> None:
    # Like -o: a --report DIR that does not exist yet is created (parents too) before the builds.
    # The base image does not exist, so the run then stops with one line, whatever the engine.
    report = tmp_path / "new" / "reports"
    result = nexlab_cli(
        "repro", "--agent", str(sample_agent), "--image", "nexlab/absent:none", "-q", "--report", str(report)
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert report.is_dir()


def test_variations_are_applied_and_restored(tmp_path: Path) -> None:
    import os
    import time

    before = (os.getcwd(), os.environ.get("TZ"), os.environ.get("LC_ALL"))
    umask = os.umask(0o022)
    os.umask(umask)
    v = variation(1, tmp_path)
    with applied(v) as directory:
        assert Path.cwd() == directory == Path(v.build_path)
        assert os.environ["TZ"] == v.tz and os.environ["LC_ALL"] == v.locale
        assert time.localtime(0).tm_hour != time.gmtime(0).tm_hour  # Pacific/Auckland is not UTC
        current = os.umask(0)
        os.umask(current)
        assert current == v.umask
    assert (os.getcwd(), os.environ.get("TZ"), os.environ.get("LC_ALL")) == before
    assert os.umask(umask) == umask
