"""extract(): real content from a real image, and hostile paths that must not escape."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from pathlib import Path

import pytest

from nexlab.image import Entry, open_image
from nexlab.image.extract import extract
from tests.conftest import scratch
from tests.image.images import SMALL_CASES, make_small_image


@pytest.fixture(scope="module")
def small(module_tmp: Path) -> Path:
    return make_small_image(SMALL_CASES[1], scratch(module_tmp, "extract"))


def test_extract_everything_matches_the_reader(small: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with open_image(small) as fs:
        entries = list(fs.walk())
        hashes = fs.sha256_files(entries)
        result = extract(fs, entries, dest)
    assert result.skipped == ()
    assert set(result.written) == {e.path for e in entries} - {"/"}
    for entry in entries[1:]:
        real = dest / entry.path.lstrip("/")
        st = os.lstat(real)
        assert stat.S_IMODE(st.st_mode) == entry.mode & 0o777, entry.path
        assert st.st_mtime_ns // 10**9 == entry.mtime, entry.path
        if entry.type == "file":
            assert hashlib.sha256(real.read_bytes()).hexdigest() == hashes[entry.inode]
        elif entry.type == "symlink":
            assert stat.S_ISLNK(st.st_mode) and os.readlink(real) == entry.target
        elif entry.type == "dir":
            assert stat.S_ISDIR(st.st_mode)


def test_extract_subset_creates_parents_and_drops_setuid(small: Path, tmp_path: Path) -> None:
    with open_image(small) as fs:
        leaf = fs.lookup("/a/b/c/leaf")
        assert leaf is not None
        setuid = dataclasses.replace(leaf, path="/bin/su", mode=0o4755)
        result = extract(fs, [leaf, setuid], tmp_path / "out")
    assert (tmp_path / "out/a/b/c/leaf").read_text() == "leaf\n"
    assert stat.S_IMODE(os.stat(tmp_path / "out/bin/su").st_mode) == 0o755
    assert result.skipped == ()


def _like(entry: Entry, **changes: object) -> Entry:
    return dataclasses.replace(entry, **changes)  # type: ignore[arg-type]


def test_hostile_paths_stay_inside(small: Path, tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    dest = outer / "dest"
    dest.mkdir(parents=True)
    with open_image(small) as fs:
        file = fs.lookup("/etc/os-release")
        link = fs.lookup("/short-link")
        assert file is not None and link is not None
        hostile = [
            _like(file, path="/../escaped"),
            _like(file, path="/a/../../escaped2"),
            _like(file, path="/x\0y"),
            # A symlink out of dest, then entries that would write through it.
            _like(link, path="/up", target=str(outer)),
            _like(file, path="/up/through-link"),
            _like(link, path="/etc", target="/etc"),
            _like(file, path="/etc/passwd-nexlab-test"),
            # A symlink first, then a file with its name: the link is replaced, never followed.
            _like(link, path="/victim", target=str(outer / "victim-target")),
            _like(file, path="/victim"),
            _like(file, path="//double//slash"),
            _like(file, path="/char", type="char", rdev=(1, 3)),
        ]
        result = extract(fs, hostile, dest)
    skipped = dict(result.skipped)
    assert set(skipped) == {
        "/../escaped",
        "/a/../../escaped2",
        "/x\0y",
        "/up/through-link",
        "/etc/passwd-nexlab-test",
        "/char",
    }
    assert sorted(p.name for p in outer.iterdir()) == ["dest"]
    assert not Path("/etc/passwd-nexlab-test").exists()
    assert os.readlink(dest / "up") == str(outer)
    assert (dest / "victim").is_file() and not (dest / "victim").is_symlink()
    assert (dest / "double" / "slash").read_text() == "ID=small\n"
