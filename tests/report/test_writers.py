"""What every writer must do for every result: escape, stay offline, limit rows, write atomically."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nexlab import report
from nexlab.errors import InputError
from nexlab.report import dispatch, html_writer, markdown_writer, text_writer
from tests.conftest import nexlab_cli
from tests.report.results import Results

RAW = ("\x1b", "\x07", "\udcff")


def test_every_result_renders_in_every_format(results: Results) -> None:
    for name, result in results.named().items():
        page = report.html(result)
        assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n"), name
        assert page.count("<style>") == 1 and "<script" not in page and "http" not in page, name
        fragment = result._repr_html_()  # type: ignore[attr-defined]
        assert fragment.startswith("<style>") and "<html" not in fragment, name
        text, markdown = str(result), report.markdown(result)
        assert text == report.text(result) and text.strip() and markdown.startswith("# "), name
        for rendered in (page, fragment, text, markdown):
            assert not any(raw in rendered for raw in RAW), name


def test_hostile_names_are_escaped_everywhere(results: Results) -> None:
    # /etc/bad-\xff-\x1b[2J: shown as ls -b shows it, in every format.
    for rendered in (str(results.diff), report.markdown(results.diff), report.html(results.diff)):
        assert "bad-\\xff-\\x1b[2J" in rendered
    assert "Kernel panic" in results.boot_failed._repr_html_() and "\\x1b[2J" in str(results.boot_failed)


def test_json_contracts(results: Results) -> None:
    for result in (results.audit, results.diff, results.repro, results.boot_ok, results.build):
        assert json.loads(report.json_text(result)) == json.loads(json.dumps(report.json_dict(result)))
        assert result.to_json_dict() == report.json_dict(result)
    assert results.diff.to_json() == report.json_dict(results.diff)
    for result in (results.populate, *results.build.steps):  # a step alone has no contract; the build has
        with pytest.raises(TypeError, match="no JSON contract"):
            report.json_dict(result)
    with pytest.raises(TypeError, match="no document for str"):
        report.text("not a result")


def test_diff_markdown_has_what_text_and_html_have(results: Results) -> None:
    markdown = report.markdown(results.deep)
    for heading in ("Size by directory", "Packages", "Causes", "Mtime only", "Diffoscope"):
        assert f"## {heading}" in markdown or f"### {heading}" in markdown, heading
    assert "| modified | `/etc/old-time` | mtime |" in markdown
    assert "echo version 2" in markdown and "| `musl` |" not in markdown and "| musl |" in markdown
    html = report.html(results.deep)
    assert "srcdoc=" in html and "&amp;amp;" in html  # diffoscope's page, escaped once more for the attribute


def test_row_limits_are_the_writers(results: Results) -> None:
    added = len([c for c in results.diff.real_changes if c.change == "added"])
    assert added > markdown_writer.ROW_LIMIT > text_writer.ROW_LIMIT
    real = len(results.diff.real_changes)
    assert f"… and {real - text_writer.ROW_LIMIT} more (--json lists them all)" in str(results.diff)
    assert f"… and {real - markdown_writer.ROW_LIMIT} more (--json lists them all)." in report.markdown(results.diff)
    assert real < html_writer.ROW_LIMIT and "more (--json" not in report.html(results.diff)


def test_repro_embeds_each_diff_once(results: Results) -> None:
    page = report.html(results.repro)
    assert page.count("<h2>Run 1 against run 2</h2>") == 1 and page.count("<style>") == 1
    assert "same content, different bytes" in page and "not reproducible" in page


def test_write_several_formats_atomically(results: Results, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.write_text("keep me")
    planted = tmp_path / "out.md"
    planted.symlink_to(canary)  # a link planted where an output goes is replaced, never followed
    outputs = {"html": tmp_path / "sub" / "out.html", "markdown": planted, "json": tmp_path / "out.json"}
    written = report.write(results.diff, {**outputs, "text": None})
    assert written == list(outputs.values())
    assert canary.read_text() == "keep me" and not planted.is_symlink()
    assert planted.read_text() == report.markdown(results.diff)
    assert outputs["json"].read_bytes() == report.json_text(results.diff).encode()
    assert not [p for p in tmp_path.rglob("*") if ".nexlab-tmp" in p.name]
    mode = outputs["json"].stat().st_mode & 0o777
    assert mode & 0o044 or os.getuid() != 0  # a report is readable like any new file, not 0600
    # A device (here /dev/null, as /dev/stdout in the CLI) is written to, not renamed over.
    assert report.write(results.diff, {"html": Path(os.devnull)}) == [Path(os.devnull)]


def test_write_renders_everything_first(results: Results, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown report formats: pdf"):
        report.write(results.diff, {"html": tmp_path / "a.html", "pdf": tmp_path / "a.pdf"})
    with pytest.raises(TypeError):
        report.write(results.populate, {"html": tmp_path / "b.html", "json": tmp_path / "b.json"})
    assert list(tmp_path.iterdir()) == []


def test_cli_json_file_is_the_json_it_prints(results: Results, tmp_path: Path) -> None:
    a, b = results.work / "a.ext4", results.work / "b.ext4"
    out = tmp_path / "d.json"
    done = nexlab_cli("diff", "--json", "--json-file", str(out), "--markdown", str(tmp_path / "d.md"), str(a), str(b))
    assert done.returncode == 1, done.stderr
    assert out.read_text() == done.stdout == report.json_text(results.diff)
    assert (tmp_path / "d.md").read_text() == report.markdown(results.diff)


def test_presenters_load_on_first_use() -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from nexlab.builder.results import AllocateResult\n"
        "assert 'allocate:' in str(AllocateResult(seconds=1.0, path=Path('x'), size=1, allocated=0))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('nexlab.audit', 'nexlab.diff', 'nexlab.boot'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"  # a build step's repr does not import the auditor or the differ
    for name, module in dispatch.PRESENTERS.items():
        owner, _, klass = name.rpartition(".")
        cls = getattr(importlib.import_module(owner), klass)
        importlib.import_module(module)
        assert dispatch.document.dispatch(cls) is not dispatch.document.dispatch(object), name


def test_write_refuses_a_directory_or_a_file_as_a_folder(results: Results, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is a directory"):
        report.write(results.audit, {"html": tmp_path})
    with pytest.raises(InputError, match="cannot make the directory"):
        report.write(results.audit, {"markdown": tmp_path / "file" / "a.md"})
    done = nexlab_cli("audit", str(results.work / "a.ext4"), "--no-fsck", "--html", str(tmp_path / "file" / "a.html"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
