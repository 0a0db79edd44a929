"""``slim()`` on trees the test makes: the categories' rules, links never followed, the records,
dpkg's filter semantics, the diff's causes and the manifest's digest. No Docker, no root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nexlab.builder.manifest import BuildManifest
from nexlab.builder.spec import BuildSpec
from nexlab.diff.causes import CAUSES, cause_for_path
from nexlab.errors import InputError
from nexlab.slim import CATEGORIES, DEFAULT, DPKG_FILTERS, RECORD, category_of, parse_categories, slim
from nexlab.slim.exclusions import Exclusions, parse_dpkg_filters, read_exclusions
from nexlab.slim.slim import dpkg_config, parse_record, record_json
from tests.conftest import nexlab_cli


def _tree(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


FILES = {
    "/usr/share/doc/bash/copyright": "GPL-3",
    "/usr/share/doc/bash/README.gz": "x" * 5000,
    "/usr/share/doc/bash/examples/loadables/Makefile": "m",
    "/usr/share/doc/only-notes/NEWS": "n",
    "/usr/share/man/man1/bash.1.gz": "man",
    "/usr/share/man/de/man1/bash.1.gz": "Mann",
    "/usr/share/info/bash.info.gz": "info",
    "/usr/share/locale/de/LC_MESSAGES/bash.mo": "mo",
    "/usr/share/locale/en_GB/LC_MESSAGES/bash.mo": "mo",
    "/usr/lib/locale/C.utf8/LC_CTYPE": "ctype",
    "/var/cache/debconf/config.dat": "answers",
    "/var/cache/apt/pkgcache.bin": "cache",
    "/var/lib/apt/lists/deb.debian.org_Packages": "lists",
    "/var/log/dpkg.log": "log",
    "/tmp/leftover": "tmp",
    "/usr/bin/bash": "#!",
    "/var/lib/dpkg/status": "",
}


def test_categories_parse_and_refuse() -> None:
    assert parse_categories("man,docs") == ("docs", "man")  # canonical order, whatever was typed
    assert parse_categories("all") == tuple(CATEGORIES)
    assert parse_categories("default,logs") == (*sorted(DEFAULT, key=list(CATEGORIES).index), "logs")
    assert parse_categories(["locales", " caches "]) == ("caches", "locales")
    with pytest.raises(ValueError, match=r"unknown slim category 'mans'.*known: caches, docs, man"):
        parse_categories("docs,mans")
    with pytest.raises(InputError, match="unknown slim category"):
        slim("/nonexistent", "bogus")
    with pytest.raises(InputError, match="unknown slim category 'doc'"):
        BuildSpec.of("agent", slim="doc")
    assert BuildSpec.of("agent", slim=["man", "docs"]).slim == ("docs", "man")
    assert BuildSpec.of("agent").describe().get("slim") is None


def test_category_rules() -> None:
    assert category_of("/usr/share/doc/bash/README.gz").name == "docs"  # type: ignore[union-attr]
    assert category_of("/usr/share/doc/bash/copyright") is None
    assert category_of("/usr/share/common-licenses/GPL-3") is None
    assert category_of("/usr/share/info/dir").name == "man"  # type: ignore[union-attr]
    assert category_of("/usr/lib/locale/C.utf8/LC_CTYPE") is None
    assert category_of("/usr/lib/locale/locale-archive").name == "locales"  # type: ignore[union-attr]
    assert category_of("/var/cache/debconf/config.dat") is None
    assert category_of("/var/cache/man/index.db").name == "caches"  # type: ignore[union-attr]


def test_slim_removes_what_the_categories_cover(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _tree(root, FILES)
    result = slim(root, DEFAULT)
    left = {"/" + str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}
    assert left == {
        "/usr/share/doc/bash/copyright",
        "/usr/lib/locale/C.utf8/LC_CTYPE",
        "/var/cache/debconf/config.dat",
        "/var/log/dpkg.log",  # logs are not in the default set
        "/usr/bin/bash",
        "/var/lib/dpkg/status",
        RECORD,
        DPKG_FILTERS,
    }
    # Emptied directories go for docs and locales; man sections and cache directories stay.
    assert not (root / "usr/share/doc/only-notes").exists() and (root / "usr/share/doc/bash").is_dir()
    assert not (root / "usr/share/locale/de").exists() and (root / "usr/share/locale").is_dir()
    assert (root / "usr/share/man/man1").is_dir() and (root / "usr/share/man/de/man1").is_dir()
    assert (root / "var/cache/apt").is_dir() and (root / "var/lib/apt/lists").is_dir() and (root / "tmp").is_dir()
    savings = {s.category: s for s in result.savings}
    assert [s.category for s in result.savings] == ["caches", "docs", "man", "locales"]
    files = {name: saving.files for name, saving in savings.items()}
    assert files == {"docs": 3, "man": 3, "locales": 2, "caches": 3}
    assert savings["docs"].directories == 3  # only-notes, bash/examples and bash/examples/loadables
    assert savings["docs"].bytes >= 5000 and result.bytes >= sum(s.bytes for s in result.savings)
    assert result.managers == ("dpkg",) and result.written == (RECORD, DPKG_FILTERS)
    text = str(result)
    assert "docs" in text and "saved" in text
    assert json.loads(json.dumps(result.to_json()))["files"] == result.files


def test_records_say_what_went_and_add_up(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _tree(root, FILES)
    slim(root, "docs")
    slim(root, "locales")
    record = json.loads((root / RECORD.lstrip("/")).read_text())
    assert set(record["categories"]) == {"docs", "locales"} and record["version"] == 1
    assert record["categories"]["docs"]["keep"] == ["/usr/share/doc/*/copyright"]
    filters = (root / DPKG_FILTERS.lstrip("/")).read_text()
    assert "path-exclude=/usr/share/doc/*\n" in filters and "path-include=/usr/share/doc/*/copyright\n" in filters
    assert "path-exclude=/usr/share/locale/*\n" in filters and "/usr/share/man" not in filters
    assert oct((root / "etc/nexlab").stat().st_mode & 0o777) == "0o755"
    assert oct((root / RECORD.lstrip("/")).stat().st_mode & 0o777) == "0o644"
    # Caches and logs hold directories packages made: dpkg is told nothing about them.
    assert dpkg_config([CATEGORIES["caches"], CATEGORIES["logs"]]) == ""
    assert [c.name for c in parse_record(record_json([CATEGORIES["man"]]))] == ["man"]
    assert parse_record("{not json") == ()


def test_no_dpkg_no_filters(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _tree(root, {"/lib/apk/db/installed": "P:busybox\n", "/usr/share/man/man1/x.1": "x"})
    result = slim(root, "man")
    assert result.managers == ("apk",) and result.written == (RECORD,)
    assert not (root / DPKG_FILTERS.lstrip("/")).exists()


def test_links_are_removed_never_followed(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    _tree(canary, {"/keep-me": "host file", "/sub/also": "host file"})
    root = tmp_path / "root"
    _tree(root, {"/usr/share/man/man1/x.1": "x"})
    (root / "usr/share/doc").mkdir(parents=True)
    (root / "usr/share/doc/evil").symlink_to(canary)
    (root / "usr/share/locale").symlink_to(canary)  # the category's directory itself is a link
    (root / "usr/share/man/man1/link.1").symlink_to(canary / "keep-me")
    slim(root, "docs,man,locales", record=False)
    assert not os.path.lexists(root / "usr/share/doc/evil") and not os.path.lexists(root / "usr/share/man/man1/link.1")
    assert (root / "usr/share/locale").is_symlink()
    assert (canary / "keep-me").read_text() == "host file" and (canary / "sub/also").exists()
    assert not (root / "etc").exists()


def test_record_never_written_through_a_link(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    root = tmp_path / "root"
    _tree(root, {"/usr/share/man/man1/x.1": "x"})
    (root / "etc").symlink_to(canary)
    with pytest.raises(InputError, match="is not a directory there"):
        slim(root, "man")
    assert list(canary.iterdir()) == []
    # A link where the record goes is replaced, its target untouched.
    (root / "etc").unlink()
    (root / "etc/nexlab").mkdir(parents=True)
    (canary / "target").write_text("host")
    (root / RECORD.lstrip("/")).symlink_to(canary / "target")
    slim(root, "man")
    assert (canary / "target").read_text() == "host"
    assert not (root / RECORD.lstrip("/")).is_symlink()


def test_dpkg_filter_semantics() -> None:
    filters = parse_dpkg_filters(
        "# comment\npath-exclude=/usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
        "path-exclude=/usr/share/doc/keep/copyright\nforce-unsafe-io\n"
    )
    rules = Exclusions(tuple(filters))
    assert rules.excluded("/usr/share/doc/bash/README")
    assert rules.excluded("/usr/share/doc/bash/deep/er/file")  # '*' matches '/', as dpkg's fnmatch does
    assert not rules.excluded("/usr/share/doc/bash/copyright")
    assert rules.excluded("/usr/share/doc/keep/copyright")  # the last match wins
    assert not rules.excluded("/usr/bin/bash")
    assert not Exclusions()


def test_read_exclusions_in_dpkg_order(tmp_path: Path) -> None:
    files = {
        "/etc/dpkg/dpkg.cfg.d/a-excludes": b"path-exclude=/usr/share/man/*\n",
        "/etc/dpkg/dpkg.cfg.d/b-includes": b"path-include=/usr/share/man/man1/*\n",
        "/etc/dpkg/dpkg.cfg.d/c.dpkg-old": b"path-exclude=/usr/bin/*\n",  # dpkg skips such names
        RECORD: record_json([CATEGORIES["locales"]]).encode(),
    }
    rules = read_exclusions(files.get, files)
    assert rules.excluded("/usr/share/man/man8/x.8") and not rules.excluded("/usr/share/man/man1/x.1")
    assert not rules.excluded("/usr/bin/ls")
    assert rules.excluded("/usr/share/locale/de/LC_MESSAGES/x.mo")  # from slim's record (apk images)
    assert not rules.excluded("/usr/lib/locale/C.utf8/LC_CTYPE")


def test_diff_causes_for_slimmed_paths() -> None:
    assert cause_for_path("/usr/share/doc/bash/README.gz", (), slimmed=True) == "slimmed-docs"
    assert cause_for_path("/usr/share/info/bash.info.gz", (), slimmed=True) == "slimmed-man"
    assert cause_for_path("/usr/share/locale/de", (), slimmed=True) == "slimmed-locales"
    assert cause_for_path(RECORD, (), slimmed=True) == "slim-record"
    assert cause_for_path("/etc/nexlab", (), slimmed=True) == "slim-record"
    # The more specific rules keep their causes; without a slimmed side nothing is blamed on slim.
    assert cause_for_path("/var/cache/apt/pkgcache.bin", (), slimmed=True) == "package-caches"
    assert cause_for_path("/usr/share/doc/bash/README.gz", ()) is None
    assert cause_for_path("/usr/share/doc/bash/README.gz", ("sha256",), slimmed=True) is None
    assert cause_for_path("/usr/share/doc/bash/copyright", (), slimmed=True) is None
    assert all(CAUSES[f"slimmed-{name}"].fix for name in CATEGORIES)


def test_manifest_digest_has_the_slim_set() -> None:
    plain = BuildManifest("b", "sha256:i", "d", "a", None, "s", "u", "1.47.0", 0, "given", 1, "none")
    slimmed = BuildManifest("b", "sha256:i", "d", "a", None, "s", "u", "1.47.0", 0, "given", 1, "none", slim=("docs",))
    other = BuildManifest("b", "sha256:i", "d", "a", None, "s", "u", "1.47.0", 0, "given", 1, "none", slim=("man",))
    assert len({plain.digest(), slimmed.digest(), other.digest()}) == 3
    assert plain.uuid != slimmed.uuid
    back = BuildManifest.from_json(slimmed.to_json())
    assert back == slimmed and back.slim == ("docs",)
    # A manifest of version 2 (no slim) reads as a build without slimming, with the same digest.
    data = json.loads(plain.to_json())
    del data["slim"]
    assert BuildManifest.from_json(json.dumps(data)).digest() == plain.digest()


def test_cli_bad_category_is_one_line(tmp_path: Path) -> None:
    result = nexlab_cli("build", "--agent", str(tmp_path / "agent"), "--slim", "docs,nope", "-o", str(tmp_path / "x"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == ["nexlab build: error: argument --slim: unknown slim category 'nope' (known: "
                      "caches, docs, man, locales, logs, all, default)"]  # fmt: skip
    assert not (tmp_path / "x").exists()
