"""The columnar inventory (nexlab/audit/table.py) gives what one FileRecord per path gave.

The references here are the record-per-path code the audit used before issue 16's
columns: records from the reader's walk (``record_from_entry``), a dict of every
digest for the duplicates, a set of inodes for ``unique_inodes``; the columns must
give the same records, frame, budget and findings, on the reader's awkward real images.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from nexlab.audit import audit
from nexlab.audit.budget import (
    RECLAIMABLE,
    TOP,
    DuplicateGroup,
    directory_sizes,
    duplicates,
    reclaimable,
    unique_inodes,
)
from nexlab.audit.findings import Facts
from nexlab.audit.inventory import FileRecord, canonical_path, record_from_entry, to_dataframe
from nexlab.audit.table import FileTable, PathMap
from nexlab.image import open_image
from nexlab.report.audit_json import audit_json, audit_json_dict
from tests.conftest import scratch
from tests.image.images import CASES, make_image

#: Reader cases with the awkward things (hardlinks, xattrs, devices, non-UTF-8 names, inline data).
AUDITED = ("ext4-4k", "ext4-inline-mkfs-d", "ext4-1k-128-no64bit", "ext4-ea_inode")


@pytest.fixture(scope="module")
def reader_images(is_root: bool, module_tmp: Path) -> dict[str, Path]:
    workdir = scratch(module_tmp, "table-images")
    return {case.name: make_image(case, workdir) for case in CASES if case.name in AUDITED}


def _walk_records(image: Path) -> list[FileRecord]:
    """The records as the audit made them before the columns: walk, hash, one record per entry."""
    with open_image(image) as fs:
        entries = list(fs.walk())
        hashes = fs.sha256_files([e for e in entries if e.type == "file"], workers=2)
    records = {e.path: record_from_entry(e, hashes.get(e.inode), None) for e in entries}
    return [records[p] for p in sorted(records)]


def _reference_unique(records: list[FileRecord]) -> list[FileRecord]:
    seen: set[int] = set()
    unique = []
    for record in sorted(records, key=lambda r: r.path):
        if record.inode not in seen:
            seen.add(record.inode)
            unique.append(record)
    return unique


def _reference_duplicates(records: list[FileRecord]) -> list[DuplicateGroup]:
    by_hash: dict[str, list[FileRecord]] = defaultdict(list)
    for record in _reference_unique(records):
        if record.type == "file" and record.size > 0 and record.sha256:
            by_hash[record.sha256].append(record)
    groups = [
        DuplicateGroup(digest, copies[0].size, tuple(r.path for r in copies), sum(r.allocated for r in copies[1:]))
        for digest, copies in by_hash.items()
        if len(copies) > 1
    ]
    return sorted(groups, key=lambda g: (-g.reclaimable, g.paths))


@pytest.mark.root
@pytest.mark.parametrize("name", AUDITED)
def test_audit_files_are_the_records_of_the_walk(reader_images: dict[str, Path], name: str) -> None:
    result = audit(reader_images[name], fsck_check=False)
    expected = _walk_records(reader_images[name])
    assert isinstance(result.files, FileTable)
    assert list(result.files) == expected
    assert [r.to_json() for r in result.files] == [r.to_json() for r in expected]
    assert list(result.files.json_dicts()) == [r.to_json() for r in expected]
    for indent in (None, 1, 3):  # the streamed JSON (a json.dumps per chunk of files) is json.dumps of it all
        whole = json.dumps(audit_json_dict(result), sort_keys=True, indent=indent, ensure_ascii=True)
        assert audit_json(result, indent=indent) == whole
    assert result.files == tuple(expected) and len(result.files) == len(expected)
    assert result.files[-1] == expected[-1] and list(result.files[2:5]) == expected[2:5]
    # Something of each awkward kind is really there, so the comparison covers it.
    assert any(r.xattrs for r in expected) and any(r.target for r in expected)
    assert any(r.sha256 for r in expected) and len({r.inode for r in expected}) < len(expected)
    pd.testing.assert_frame_equal(result.inventory, to_dataframe(expected))
    assert result.budget.duplicates == tuple(_reference_duplicates(expected)[:TOP])
    assert result.budget.duplicate_files == sum(len(g.paths) - 1 for g in _reference_duplicates(expected))
    assert [r.path for r in unique_inodes(result.files)] == [r.path for r in _reference_unique(expected)]
    assert result.budget.allocated_bytes == sum(r.allocated for r in _reference_unique(expected))


@pytest.mark.root
def test_findings_read_through_the_columns_as_through_a_dict(reader_images: dict[str, Path]) -> None:
    """The rules' shortcuts for a PathMap (a prefix slice, a mode filter) find what a dict gives."""
    result = audit(reader_images["ext4-4k"], fsck_check=False)
    table = result.files
    assert isinstance(table, FileTable)
    columns = Facts(records=table.by_path(), read=lambda path: None)
    plain = Facts(records={r.path: r for r in table}, read=lambda path: None)
    for prefix in ("/", "/etc/", "/dir", "/many/", "/nowhere/"):
        assert list(columns.under(prefix)) == sorted(plain.under(prefix))
    for kinds, bits in ((("file",), 0o4000), (("file", "dir", "fifo"), 0o002), (("file",), 0o111)):
        assert columns.with_mode(kinds, bits) == sorted(plain.with_mode(kinds, bits), key=lambda r: r.path)
    assert any(columns.with_mode(("file",), 0o4000))  # the tree has a setuid file
    for path in [r.path for r in table] + ["/missing", "/etc/../etc/os-release", "/symlink-loop/x"]:
        assert canonical_path(columns.records, path) == canonical_path(plain.records, path)


def _crafted() -> list[FileRecord]:
    """Paths whose sorted order is not the walk's (``-`` and ``.`` sort before ``/``), non-UTF-8
    names, hardlinks, symlinks, xattrs, packages, files without digests."""
    rng = random.Random(16)
    records = []
    names = ["/", "/a", "/a/b", "/a-b", "/a.b", "/a/c", "/\udcff", "/z\udc80/x", "/lnk", "/e"]
    for number, path in enumerate(names, start=2):
        kind = "dir" if path in ("/", "/a", "/z\udc80") else "symlink" if path == "/lnk" else "file"
        records.append(
            FileRecord(
                path=path,
                type=kind,
                mode=rng.choice((0o755, 0o4755, 0o644, 0o1777)),
                uid=rng.choice((0, 1000, 2**32 - 2)),
                gid=0,
                size=rng.randrange(1 << 40),
                allocated=4096 * rng.randrange(100),
                nlink=1,
                inode=number if path != "/e" else 4,  # /e is a hardlink of /a/b
                mtime=rng.choice((-(2**31), 0, 2**34)),
                sha256=hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest() if kind == "file" else None,
                target="../a" if kind == "symlink" else None,
                xattrs={"user.x": "00" * 32} if path == "/a-b" else {},
                package="pkg" if path.startswith("/a/") else None,
            )
        )
    return records[::-1]  # any order in, path order out


def test_table_of_records_is_the_sorted_records() -> None:
    records = _crafted()
    table = FileTable.from_records(records)
    expected = sorted(records, key=lambda r: r.path)
    assert list(table) == expected and table == expected and len(table) == len(expected)
    assert [table[i] for i in range(-len(expected), len(expected))] == expected + expected
    with pytest.raises(IndexError):
        table[len(expected)]
    by_path = table.by_path()
    assert isinstance(by_path, PathMap)
    assert dict(by_path.items()) == {r.path: r for r in records}
    assert list(by_path.values()) == expected and list(by_path) == [r.path for r in expected]
    assert "/a-b" in by_path and "/nothing" not in by_path and by_path.get("/nothing") is None
    assert [p for p, _ in by_path.under("/a")] == ["/a", "/a-b", "/a.b", "/a/b", "/a/c"]
    assert [r.path for r in table.unique()] == [r.path for r in _reference_unique(records)]
    # Records made from the table are fresh: changing one's xattrs does not change the table.
    assert table[2].path == "/a-b" and table[2].xattrs
    table[2].xattrs["user.y"] = "1"
    assert table == expected


def test_duplicates_and_sizes_match_the_record_per_path_versions() -> None:
    """20k files with random digests: the bucket filter keeps every duplicate and no false one."""
    rng = random.Random(1602)
    records = []
    digests = [rng.randbytes(32).hex() for _ in range(19_000)]
    for number in range(20_000):
        digest = digests[number] if number < 19_000 else rng.choice(digests[:500])
        size = rng.choice((0, 1, 4096, 5000)) if number % 7 else 0
        directory = f"/d{number % 37}/s{number % 5}"
        records.append(
            FileRecord(
                f"{directory}/f{number}",
                "file",
                0o644,
                0,
                0,
                size,
                4096 * (number % 3),
                1,
                number + 100,
                0,
                digest,
                None,
            )
        )
    records += [FileRecord(f"/d{n}", "dir", 0o755, 0, 0, 4096, 4096, 2, 50 + n, 0, None, None) for n in range(37)]
    records += [
        FileRecord(f"/d{n}/s{m}", "dir", 0o755, 0, 0, 4096, 4096, 2, 20_200 + 5 * n + m, 0, None, None)
        for n in range(37)
        for m in range(5)
    ]
    records += [
        FileRecord(f"/usr/share/doc/p{n}", "file", 0o644, 0, 0, 9, 4096, 1, 30_000 + n, 0, None, None) for n in range(9)
    ]
    records.append(
        FileRecord("/hardlink", "file", 0o644, 0, 0, 4096, 4096, 2, 100 + 19_500, 0, records[19_500].sha256, None)
    )
    found = duplicates(records)
    assert found == _reference_duplicates(records) and len(found) > 100
    # directory_sizes, reclaimable: the same sums as the record loops.
    sizes: dict[str, int] = defaultdict(int)
    for record in _reference_unique(records):
        path = record.path if record.type == "dir" else record.path.rpartition("/")[0] or "/"
        while True:
            sizes[path] += record.allocated
            if path == "/":
                break
            path = path.rpartition("/")[0] or "/"
    assert directory_sizes(records) == dict(sizes)
    totals = {category: [0, 0] for category in RECLAIMABLE}
    for record in _reference_unique(records):
        category = next((c for c, rule in RECLAIMABLE.items() if rule.covers(record.path)), None)
        if record.type != "dir" and category is not None:
            totals[category][0] += record.allocated
            totals[category][1] += 1
    assert reclaimable(records) == [(c, b, n) for c, (b, n) in totals.items()]
    assert any(n == 9 for _, _, n in reclaimable(records))


@pytest.mark.root
def test_unreadable_files_are_named_as_before(reader_images: dict[str, Path], tmp_path: Path) -> None:
    """Hashing in chunks names an unreadable file by its first path in the walk, as the walk's
    entries did: the same warnings for a truncated image."""
    import os
    import shutil

    image = tmp_path / "truncated.ext4"
    shutil.copyfile(reader_images["ext4-4k"], image)
    os.truncate(image, image.stat().st_size // 4)
    with open_image(image) as fs:
        entries = list(fs.walk())
        fs.sha256_files([e for e in entries if e.type == "file"], workers=2)
        expected = sorted(w for w in fs.warnings if "content unreadable" in w)
    result = audit(image, fsck_check=False)
    assert expected and sorted(w for w in result.warnings if "content unreadable" in w) == expected
    assert not any(w.startswith("inode ") and "content unreadable" in w for w in expected)
