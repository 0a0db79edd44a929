"""The reader's fast paths give exactly what its general paths give, on every real image case.

The walk decodes a plain regular file in one unpack (``_plain_file_entry``) and hands
everything else to ``_entry(_inode())``; the hashing plans most files as one run of the
mapping and hashes the rest the general way. These tests run both ways on the same
images (the kernel tests compare the walk and the hashes with a mount) and check the
fast paths really are taken where they should be, so a fallback that silently took over
everything would fail here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import pytest

from nexlab.errors import ImageFormatError
from nexlab.image import open_image
from nexlab.image.model import Entry, plain_file_entry
from tests.image.images import CASES, Case


def general_entry(fs: object, entry: Entry) -> Entry:
    return fs._entry(fs._inode(entry.inode), entry.path)  # type: ignore[attr-defined]


def test_walk_fast_path_matches_general_path(case: tuple[Case, Path]) -> None:
    spec, image = case
    with open_image(image) as fs:
        entries = list(fs.walk())
        fast = [e for e in entries if fs._plain_file_entry(e.inode, e.path) is not None]
        for entry in entries:
            assert entry == general_entry(fs, entry), entry.path
            assert entry.xattrs == general_entry(fs, entry).xattrs, entry.path
    assert all(e.type == "file" and not e.xattrs for e in fast)
    if spec.inode_size >= 256 and "inline_data" not in spec.mkfs:
        # Most regular files of a 256-byte-inode image are plain: the fast path carries them.
        # (With inline_data, e2fsprogs gives every inode an in-inode system.data xattr: none is.)
        files = [e for e in entries if e.type == "file"]
        assert len(fast) > len(files) // 2
    elif spec.inode_size < 256:
        # A 128-byte record has no room for the fields it reads: all go the general way.
        assert fast == []


def test_hashing_fast_path_matches_general_path(case: tuple[Case, Path]) -> None:
    _spec, image = case
    with open_image(image) as fs:
        files = {e.inode: e for e in fs.walk() if e.type == "file"}
        hashes = fs.sha256_files(files.values())
        general = {ino: fs._sha256_general(ino, lambda _ino: None) for ino in files}
        content = {ino: hashlib.sha256(fs.read_bytes(e)).hexdigest() for ino, e in files.items()}
    assert hashes == {ino: digest for ino, digest in general.items() if digest is not None}
    assert hashes == content


def test_walk_of_a_record_cut_by_the_end_of_the_file_skips_it(tmp_path: Path, images: dict[str, Path]) -> None:
    """The fast path checks the whole record is in the file, as the general path does."""
    spec = next(c for c in CASES if c.name == "ext4-4k")
    source = images[spec.name]
    with open_image(source) as fs:
        entries = {e.path: e for e in fs.walk()}
        target = next(e for p, e in sorted(entries.items()) if fs._plain_file_entry(e.inode, p) is not None)
        offset = fs._record_offset(target.inode)
        assert offset is not None
    copy = tmp_path / "cut.img"
    shutil.copyfile(source, copy)
    with open(copy, "r+b") as handle:
        handle.truncate(offset + 200)  # the record's first 164 bytes are there, not all 256
    with open_image(copy) as fs:
        paths = {e.path for e in fs.walk()}
        assert fs._plain_file_entry(target.inode, target.path) is None
        with pytest.raises(ImageFormatError, match="past the end"):
            fs._inode(target.inode)
    assert target.path not in paths


@pytest.mark.parametrize("flip", ["xattr", "extra_isize", "acl"])
def test_walk_leaves_odd_records_to_the_general_path(tmp_path: Path, images: dict[str, Path], flip: str) -> None:
    """A record with in-inode xattrs, another i_extra_isize or an xattr block is not 'plain'."""
    source = images["ext4-4k"]
    copy = tmp_path / "odd.img"
    shutil.copyfile(source, copy)
    with open_image(copy) as fs:
        target = next(e for e in fs.walk() if fs._plain_file_entry(e.inode, e.path) is not None)
        offset = fs._record_offset(target.inode)
        assert offset is not None
    patch = {
        "xattr": (offset + 160, (0xEA020000).to_bytes(4, "little") + bytes(4)),  # magic, then an end
        "extra_isize": (offset + 128, (28).to_bytes(2, "little")),
        "acl": (offset + 104, (1).to_bytes(4, "little")),  # i_file_acl: block 1 (not an EA block)
    }[flip]
    with open(copy, "r+b") as handle:
        handle.seek(patch[0])
        handle.write(patch[1])
    with open_image(copy) as fs:
        assert fs._plain_file_entry(target.inode, target.path) is None
        after = next(e for e in fs.walk() if e.path == target.path)
        assert after == general_entry(fs, after)


def test_hash_plan_matches_one_run(case: tuple[Case, Path]) -> None:
    """The bulk plan (numpy over all records) places each file exactly where ``_one_run`` does."""
    spec, image = case
    with open_image(image) as fs:
        numbers = sorted({e.inode for e in fs.walk()} | {-(2**70), 0, 1, 7, 10**9, 2**80})  # and odd numbers
        sizes, starts, ends = (column.tolist() for column in fs._hash_plan(numbers))
        for ino, start, end in zip(numbers, starts, ends, strict=True):
            run = fs._one_run(ino)
            assert (start, end) == (run if run is not None else (-1, 0)), ino
        files = [e for e in fs.walk() if e.type == "file"]
        by_inode = dict(zip(numbers, sizes, strict=True))
        assert all(by_inode[e.inode] == e.size for e in files)
    planned = sum(1 for start in starts if start >= 0)
    if spec.mkfs[:2] == ("-t", "ext4") and "^extent" not in ",".join(spec.mkfs) and "inline_data" not in spec.mkfs:
        assert planned > len(files) // 2  # extent-mapped, not inline: most files are one run


@pytest.mark.parametrize(
    "field",
    ["start_hi", "size_hi", "length", "logical", "depth"],
)
def test_hash_plan_refuses_hostile_extents(tmp_path: Path, images: dict[str, Path], field: str) -> None:
    """A plain file's leaf pointing past the image, a size past it, a short or shifted extent
    or a claimed tree: no fast plan; the general path decides (and warns where it cannot read)."""
    source = images["ext4-4k"]
    copy = tmp_path / "hostile.img"
    shutil.copyfile(source, copy)
    with open_image(copy) as fs:
        target = next(e for e in fs.walk() if e.type == "file" and e.size > 8192 and fs._one_run(e.inode))
        offset = fs._record_offset(target.inode)
        assert offset is not None
        before = fs.sha256_files([target])
    where, value = {
        "start_hi": (offset + 56 + 2, (0xFFFF).to_bytes(2, "little")),
        "size_hi": (offset + 108, (0x7FFFFFFF).to_bytes(4, "little")),
        "length": (offset + 52 + 4, (1).to_bytes(2, "little")),
        "logical": (offset + 52, (1).to_bytes(4, "little")),
        "depth": (offset + 40 + 6, (1).to_bytes(2, "little")),
    }[field]
    with open(copy, "r+b") as handle:
        handle.seek(where)
        handle.write(value)
    with open_image(copy) as fs:
        _sizes, starts, _ends = fs._hash_plan([target.inode])
        assert starts.tolist() == [-1]
        hashes = fs.sha256_files([target])
        warnings = list(fs.warnings)
    assert target.inode in before
    if target.inode not in hashes:
        assert any("content unreadable" in w for w in warnings)
    else:
        # Still readable the general way (a shortened extent leaves a hole: zeros, another hash).
        assert hashes[target.inode] != before[target.inode]


def test_plain_file_entry_is_the_dataclass_entry() -> None:
    """The slot-setter constructor sets every field, to what ``Entry(...)`` would."""
    values = ("/a/b", 12, 0o4755, 70000, 70001, 1 << 40, 8192, 3, -5, 1 << 33, 0, None, 0x80000, True)
    fast = plain_file_entry(*values)
    slow = Entry(*values[:2], "file", *values[2:12], None, {}, None, *values[12:])  # type: ignore[arg-type]
    assert fast == slow
    assert [getattr(fast, f.name) for f in dataclasses.fields(Entry)] == [
        getattr(slow, f.name) for f in dataclasses.fields(Entry)
    ]
    assert plain_file_entry(*values).xattrs is not fast.xattrs  # a dict of its own, like default_factory
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.size = 0  # type: ignore[misc]


def test_hash_plan_with_an_inode_table_past_the_file_falls_back(images: dict[str, Path]) -> None:
    """A descriptor naming a table far past the file (here 2**60: the plan's offsets would wrap
    around 64 bits) sends its inodes to the general path, which refuses them with a warning."""
    with open_image(images["ext4-4k"]) as fs:
        files = [e for e in fs.walk() if e.type == "file"]
        fs._descriptor = lambda group: 1 << 60  # type: ignore[method-assign]
        sizes, starts, _ends = fs._hash_plan(sorted({e.inode for e in files}))
        assert set(starts.tolist()) == {-1} and set(sizes.tolist()) == {0}
        assert fs.sha256_files(files) == {}
        assert any("content unreadable" in w for w in fs.warnings)
