"""The reader's fast paths give exactly what its general paths give, on every real image case.

The walk decodes a plain regular file in one unpack (``_plain_file_entry``) and hands
everything else to ``_entry(_inode())``; the hashing plans most files as one run of the
mapping and hashes the rest the general way. These tests run both ways on the same
images (the kernel tests compare the walk and the hashes with a mount) and check the
fast paths really are taken where they should be, so a fallback that silently took over
everything would fail here.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from nexlab.errors import ImageFormatError
from nexlab.image import open_image
from nexlab.image.model import Entry
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
