"""``nexlab diff`` on generated image pairs with known changes of every field kind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import nexlab
from nexlab.diff import Diff, diff
from nexlab.diff.causes import cause_for_path
from nexlab.diff.packages import compare_versions
from nexlab.errors import ImageFormatError, InputError
from tests.conftest import nexlab_cli, require, scratch
from tests.diff.pairs import EXPECTED, HOSTILE_PATH, MANY, UUID_B, base_tree, make_image, make_pair


@pytest.fixture(scope="module")
def pair(module_tmp: Path, is_root: bool) -> tuple[Path, Path]:
    return make_pair(scratch(module_tmp, "pair"))


@pytest.fixture(scope="module")
def same_content(module_tmp: Path) -> tuple[Path, Path]:
    """One tree, two mkfs runs with different UUIDs: identical content, different bytes."""
    work = scratch(module_tmp, "same")
    tree = work / "tree"
    tree.mkdir()
    base_tree(tree)
    return make_image(tree, work / "a.ext4"), make_image(tree, work / "b.ext4", uuid=UUID_B)


@pytest.fixture(scope="module")
def result(pair: tuple[Path, Path]) -> Diff:
    return diff(*pair)


def test_every_field_kind_is_found(result: Diff) -> None:
    found = {c.path: (c.change, c.fields) for c in result.change_records}
    many = {p for p in found if p.startswith("/many/")}
    assert len(many) == MANY and all(found[p] == ("added", ()) for p in many)
    assert {p: v for p, v in found.items() if p not in many} == EXPECTED
    assert not result.identical_bytes and not result.identical_content


def test_directory_size_is_not_compared(result: Diff, pair: tuple[Path, Path]) -> None:
    from nexlab.image import open_image

    with open_image(pair[0]) as a, open_image(pair[1]) as b:
        old, new = a.lookup("/many"), b.lookup("/many")
        assert old is not None and new is not None and old.size < new.size  # it did grow
    assert "/many" not in {c.path for c in result.change_records}


def test_mtime_only_is_apart(result: Diff) -> None:
    assert [c.path for c in result.mtime_only] == ["/etc/old-time"]
    assert "/etc/old-time" not in {c.path for c in result.real_changes}
    assert result.counts() == {"added": MANY + 2, "removed": 1, "modified": len(EXPECTED) - 4, "mtime_only": 1}
    frame = result.changes
    assert frame.loc[frame.path == "/etc/old-time", "mtime_only"].item()


def test_causes(result: Diff) -> None:
    causes = {c.path: c.cause for c in result.change_records}
    assert causes["/etc/shadow"] == "shadow-lastchg"
    assert causes["/var/log/dpkg.log"] == "package-logs"
    assert causes["/etc/ssh/ssh_host_ed25519_key"] == "ssh-host-keys"
    assert causes["/etc/old-time"] == "timestamps"
    assert causes["/etc/conf"] is None
    fs = {f.field: f for f in result.filesystem}
    assert fs["uuid"].cause == "fs-uuid" and fs["hash_seed"].cause == "fs-hash-seed"
    for key in ("shadow-lastchg", "package-logs", "ssh-host-keys", "timestamps", "fs-uuid"):
        assert result.causes[key].fix


def test_cause_catalogue() -> None:
    assert cause_for_path("/var/cache/ldconfig/aux-cache", ("sha256",)) == "ldconfig-aux-cache"
    assert cause_for_path("/usr/lib/python3/dist-packages/x/__pycache__/a.cpython-311.pyc", ("sha256",)) == "pyc"
    assert cause_for_path("/etc/machine-id", ("sha256",)) == "machine-id"
    assert cause_for_path("/.dockerenv", ()) == "dockerenv"
    assert cause_for_path("/etc/resolv.conf", ("type", "target")) == "docker-network-files"
    assert cause_for_path("/var/lib/systemd/random-seed", ("sha256",)) == "random-seed"
    assert cause_for_path("/var/cache/apt/pkgcache.bin", ("sha256",)) == "package-caches"
    assert cause_for_path("/etc/shadow", ("mtime",)) == "timestamps"
    assert cause_for_path("/usr/bin/tool", ("sha256",)) is None


def test_size_by_directory(result: Diff) -> None:
    frame = result.size_by_directory
    assert list(frame.columns) == ["directory", "a", "b", "delta", "percent"]
    rows = {r.name: r for r in result.directory_size_records}
    assert rows["/usr/share"].delta == -4096  # readme removed: one block
    assert rows["/etc"].delta == 4096  # new-file added: one block
    assert rows["/usr/share"].percent == -50.0


def test_identical_content_different_bytes(same_content: tuple[Path, Path]) -> None:
    result = diff(*same_content)
    assert not result.identical_bytes and result.identical_content
    assert {f.field for f in result.filesystem} == {"uuid", "hash_seed"}
    assert "hidden-metadata" not in result.causes and "fs-uuid" in result.causes
    cli = nexlab_cli("diff", str(same_content[0]), str(same_content[1]))
    assert cli.returncode == 0, cli.stderr
    assert "same content, different bytes" in cli.stdout


def test_hidden_metadata(tmp_path: Path) -> None:
    """Same tree, same UUID and clock, but copied a second later: only inode ctimes differ."""
    import time

    tree = tmp_path / "tree"
    tree.mkdir()
    base_tree(tree)
    first = make_image(tree, tmp_path / "a.ext4")
    time.sleep(1.1)
    copy = tmp_path / "copy"
    shutil.copytree(tree, copy, symlinks=True)
    second = make_image(copy, tmp_path / "b.ext4")
    result = diff(first, second)
    assert not result.identical_bytes and result.identical_content and not result.filesystem
    assert list(result.causes) == ["hidden-metadata"]


def test_identical_bytes(same_content: tuple[Path, Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy.ext4"
    shutil.copyfile(same_content[0], copy)
    result = nexlab.diff(same_content[0], copy)  # the package itself is callable
    assert result.identical_bytes and result.identical_content and not result.filesystem
    assert "identical (bit for bit)" in str(result)


def test_json_contract(pair: tuple[Path, Path]) -> None:
    cli = nexlab_cli("diff", "--json", str(pair[0]), str(pair[1]))
    assert cli.returncode == 1, cli.stderr
    data = json.loads(cli.stdout)
    assert data["version"] == 1
    assert data["identical_bytes"] is False and data["identical_content"] is False
    assert set(data["filesystem"]) >= {"uuid", "hash_seed"}
    assert data["filesystem"]["uuid"]["cause"] == "fs-uuid"
    changes = {c["path"]: c for c in data["changes"]}
    assert changes["/etc/conf"] == {"path": "/etc/conf", "change": "modified", "fields": ["mode"], "cause": None}
    assert changes["/etc/new-file"]["change"] == "added" and changes["/etc/new-file"]["fields"] == []
    assert changes["/etc/shadow"]["cause"] == "shadow-lastchg"
    assert [c["path"] for c in data["changes"]] == sorted(changes)
    assert cli.stdout == json.dumps(data, sort_keys=True, indent=2) + "\n"


def test_html_and_markdown(pair: tuple[Path, Path], tmp_path: Path) -> None:
    html_file, md_file = tmp_path / "d.html", tmp_path / "d.md"
    cli = nexlab_cli("diff", "-q", "--html", str(html_file), "--markdown", str(md_file), str(pair[0]), str(pair[1]))
    assert cli.returncode == 1 and cli.stdout == ""
    page = html_file.read_text()
    assert page.startswith("<!DOCTYPE html>") and "/etc/xattr-file" in page and "shadow-lastchg" in page
    assert "<script" not in page and "src=" not in page and "http" not in page  # offline, self-contained
    markdown = md_file.read_text()
    assert "| modified | `/etc/conf` | mode |" in markdown


def test_hostile_names_are_escaped(result: Diff, pair: tuple[Path, Path], tmp_path: Path) -> None:
    text = str(result)
    assert "\\xff" in text and "\\x1b" in text and "\x1b" not in text
    page = tmp_path / "page.html"
    cli = nexlab_cli("diff", "--html", str(page), "--markdown", str(tmp_path / "d.md"), str(pair[0]), str(pair[1]))
    assert cli.returncode == 1, cli.stderr
    assert "\x1b" not in cli.stdout and "bad-\\xff-\\x1b[2J" in cli.stdout
    assert "bad-\\xff-\\x1b[2J" in page.read_text(encoding="utf-8")
    assert "bad-\\xff" in (tmp_path / "d.md").read_text(encoding="utf-8")
    data = json.loads(nexlab_cli("diff", "--json", str(pair[0]), str(pair[1])).stdout)
    assert HOSTILE_PATH in {c["path"] for c in data["changes"]}  # JSON keeps the name losslessly


def test_repr_html(result: Diff) -> None:
    fragment = result._repr_html_()
    assert fragment.startswith("<style>") and "/etc/owned" in fragment and "<html" not in fragment


def test_deep_runs_diffoscope(pair: tuple[Path, Path]) -> None:
    require(shutil.which("diffoscope") is not None, "diffoscope (apt-get install diffoscope)")
    result = diff(*pair, deep=True)
    assert result.deep is not None and result.deep.files == 5  # the modified files with a sha256 change
    assert "echo version 2" in result.deep.text and "KEY-B-9876543210" in result.deep.text
    assert "<html" in result.deep.html.lower()
    page = nexlab_cli("diff", "--deep", "--html", "/dev/stdout", "-q", str(pair[0]), str(pair[1])).stdout
    assert "srcdoc=" in page and "ssh_host_ed25519_key" in page.split("srcdoc=", 1)[1]


def test_deep_without_diffoscope_is_a_note(pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # The one place a missing tool is simulated: PATH without diffoscope, the real run() otherwise.
    bin_dir = Path(shutil.which("mkfs.ext4") or "/sbin/mkfs.ext4").parent
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr("nexlab.run._SBIN", str(bin_dir))
    result = diff(*pair, deep=True, packages=False)
    assert result.deep is not None and "apt-get install diffoscope" in result.deep.note
    assert result.deep.text == ""


def test_bad_inputs_exit_2_with_one_line(pair: tuple[Path, Path], tmp_path: Path) -> None:
    not_ext4 = tmp_path / "zeros.img"
    not_ext4.write_bytes(bytes(2 * 1024 * 1024))
    for args in (
        (str(pair[0]), str(tmp_path / "missing.ext4")),
        (str(pair[0]), str(not_ext4)),
        (str(tmp_path), str(pair[0])),
        ("--depth", "0", str(pair[0]), str(pair[1])),
        ("--html", str(tmp_path / "no" / "such" / "dir.html"), str(pair[0]), str(pair[1])),
    ):
        cli = nexlab_cli("diff", *args)
        assert cli.returncode == 2, (args, cli.stdout, cli.stderr)
        assert len(cli.stderr.strip().splitlines()) == 1 and cli.stderr.startswith("nexlab diff: error:")
    with pytest.raises(InputError):
        diff(pair[0], tmp_path / "missing.ext4")
    with pytest.raises(ImageFormatError):
        diff(pair[0], not_ext4)


def test_version_order() -> None:
    assert compare_versions("3.1.4-r5", "3.3.2-r0") < 0
    assert compare_versions("1.36.1-r15", "1.36.1-r5") > 0
    assert compare_versions("1.0~rc1", "1.0") < 0
    assert compare_versions("2.38.1-5+deb12u1", "2.38.1-5") > 0
    assert compare_versions("1.2", "1.2") == 0
