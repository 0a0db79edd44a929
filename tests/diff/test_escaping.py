"""Names and contents from an image reach reports and terminals only escaped.

Small real pairs made with ``mkfs.ext4 -d`` (no root): a file name with a
backtick and Markdown link syntax, a name that is not UTF-8, a label and a
file content holding ESC sequences.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nexlab.builder.allocate import allocate
from nexlab.builder.mkfs import mkfs
from nexlab.diff import diff
from nexlab.report import markdown as diff_markdown
from tests.conftest import nexlab_cli, require, scratch
from tests.diff.pairs import UUID_A, UUID_B

TICK = "tick`[click](evil.example)`|x"
LATIN1 = b"caf\xe9-config"


def _image(tree: Path, image: Path, uuid: str, label: str) -> Path:
    allocate(image, "16MiB")
    mkfs(image, uuid=uuid, hash_seed=uuid, label=label, populate_from=tree, env={"E2FSPROGS_FAKE_TIME": "1700000000"})
    return image


@pytest.fixture(scope="module")
def pair(module_tmp: Path) -> tuple[Path, Path]:
    require(shutil.which("mkfs.ext4") is not None, "mkfs.ext4 (e2fsprogs)")
    work = scratch(module_tmp, "escaping")
    images = []
    for side, uuid, label, version in (("a", UUID_A, "plain", b"1"), ("b", UUID_B, "\x1b[2Jx", b"2")):
        tree = work / f"tree-{side}"
        tree.mkdir()
        (tree / TICK).write_bytes(b"version " + version + b"\n")
        (tree / "shared").write_bytes(b"same\n")
        (tree / "naïve-ünïcode").write_bytes(b"utf-8 name " + version + b"\n")
        with open(os.fsencode(tree) + b"/" + LATIN1, "wb") as f:
            f.write(b"setting=" + version + b"\n")
        (tree / "banner").write_bytes(b"hello \x1b[2J\x1b]0;owned\x07 " + version + b"\n")
        images.append(_image(tree, work / f"{side}.ext4", uuid, label))
    return images[0], images[1]


def test_markdown_code_spans_hold_backticks(pair: tuple[Path, Path]) -> None:
    markdown = diff_markdown(diff(*pair, packages=False))
    # The backtick became a quote and the pipe is escaped: the name stays one code span in its cell.
    assert "`/tick'[click](evil.example)'\\|x`" in markdown
    assert "`/tick`" not in markdown
    assert "\x1b" not in markdown and "\\x1b[2Jx" in markdown  # the label, escaped


def test_terminal_text_has_no_raw_escapes(pair: tuple[Path, Path]) -> None:
    done = nexlab_cli("diff", str(pair[0]), str(pair[1]))
    assert done.returncode == 1, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "label" in done.stdout and "\\x1b[2Jx" in done.stdout


def test_deep_survives_a_name_that_is_not_utf8(pair: tuple[Path, Path]) -> None:
    require(shutil.which("diffoscope") is not None, "diffoscope (apt-get install diffoscope)")
    result = diff(*pair, deep=True, packages=False)
    assert result.deep is not None
    assert "failed" not in result.deep.note, result.deep.note
    assert result.deep.files == 4
    assert "setting=2" in result.deep.text and "version 2" in result.deep.text
    assert "caf\\xe9-config" in result.deep.text and "naïve-ünïcode" in result.deep.text
    # diffoscope shows the banner's bytes; the terminal text escapes what it kept raw.
    text = str(result)
    assert "\x1b" not in text and "\x07" not in text and "banner" in text
