"""The reader against the kernel: every field of every path, on real images.

The kernel's view comes from a read-only, ``noload`` loop mount (which changes
no byte of the image); the reader must agree with it exactly.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from nexlab.builder.mount import mount
from nexlab.image import Entry, open_image
from nexlab.run import run
from tests.image.images import Case

KINDS = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


def kernel_view(root: Path) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Paths in the reader's order (pre-order, children by name bytes) and their records."""
    order: list[str] = []
    records: dict[str, dict[str, Any]] = {}

    def visit(real: bytes, path: str) -> None:
        st = os.lstat(real)
        kind = KINDS[stat.S_IFMT(st.st_mode)]
        record: dict[str, Any] = {
            "type": kind,
            "mode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid,
            "gid": st.st_gid,
            "size": st.st_size,
            "allocated": st.st_blocks * 512,
            "nlink": st.st_nlink,
            "inode": st.st_ino,
            "mtime": st.st_mtime_ns // 10**9,
            "atime": st.st_atime_ns // 10**9,
            "ctime": st.st_ctime_ns // 10**9,
            "target": os.fsdecode(os.readlink(real)) if kind == "symlink" else None,
            "rdev": (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in ("char", "block") else None,
            "xattrs": {
                name: os.getxattr(real, name, follow_symlinks=False)
                for name in os.listxattr(real, follow_symlinks=False)
            },
        }
        if kind == "file":
            with open(real, "rb") as f:
                record["sha256"] = hashlib.file_digest(f, "sha256").hexdigest()
        order.append(path)
        records[path] = record
        if kind == "dir":
            for name in sorted(os.listdir(real)):
                visit(os.path.join(real, name), (path.rstrip("/") + "/" + os.fsdecode(name)))

    visit(os.fsencode(root), "/")
    return order, records


def reader_record(entry: Entry, hashes: dict[int, str]) -> dict[str, Any]:
    record: dict[str, Any] = {
        field: getattr(entry, field)
        for field in (
            "type",
            "mode",
            "uid",
            "gid",
            "size",
            "allocated",
            "nlink",
            "inode",
            "mtime",
            "atime",
            "ctime",
            "target",
            "rdev",
        )
    }
    # The kernel hides system.data (inline data's tail); it shows ACLs, which the reader converts.
    record["xattrs"] = {k: v for k, v in entry.xattrs.items() if k != "system.data"}
    if entry.type == "file":
        record["sha256"] = hashes.get(entry.inode)
    if entry.inline and entry.type == "file":
        # The kernel's stat adds a sector per 512 bytes of inline data so tar and rsync
        # do not think the file is sparse; the reader reports what is really on disk.
        record["allocated"] += (entry.size + 511) // 512 * 512
    return record


@pytest.fixture(scope="module")
def views(images: dict[str, Path]) -> dict[str, Any]:
    return _ViewCache(images)


class _ViewCache(dict):  # type: ignore[type-arg]
    def __init__(self, images: dict[str, Path]) -> None:
        super().__init__()
        self.images = images

    def __missing__(self, name: str) -> Any:
        with mount(self.images[name], read_only=True) as m:
            value = kernel_view(m.path)
            value = (*value, os.statvfs(m.path))
        self[name] = value
        return value


def test_walk_matches_kernel(case: tuple[Case, Path], views: dict[str, Any]) -> None:
    spec, image = case
    order, kernel, _statvfs = views[spec.name]
    with open_image(image) as fs:
        entries = list(fs.walk())
        hashes = fs.sha256_files(entries)
        warnings = list(fs.warnings)
    assert warnings == []
    assert [e.path for e in entries] == order
    mismatches = []
    for entry in entries:
        ours = reader_record(entry, hashes)
        theirs = kernel[entry.path]
        for field, value in theirs.items():
            if ours[field] != value:
                mismatches.append(f"{entry.path}: {field}: reader {ours[field]!r} kernel {value!r}")
    assert "\n".join(mismatches) == ""
    # The tree really has what the case is about.
    by_path = {e.path: e for e in entries}
    assert by_path["/data"].inode == by_path["/data.hardlink"].inode
    assert by_path["/link-long"].target == "x" * 200
    assert len(by_path["/data"].xattrs["user.big"]) == 256 * (spec.block_size // 512)
    assert any("\udce9" in e.path for e in entries)
    if "inline_data" in spec.mkfs[-1]:
        assert by_path["/tiny"].inline and by_path["/small100"].inline
        assert any(e.inline for e in entries if e.type == "dir")
    if spec.big_dir:
        assert sum(1 for e in entries if e.path.startswith("/many/")) == 3000


def test_read_and_lookup(case: tuple[Case, Path], views: dict[str, Any]) -> None:
    spec, image = case
    with open_image(image) as fs:
        assert fs.read_path("/etc/os-release") == b'ID=nexlab\nPRETTY_NAME="nexlab test"\n'
        # Absolute symlinks resolve inside the image, never on the host.
        assert fs.read_path("/link-abs") == b'ID=nexlab\nPRETTY_NAME="nexlab test"\n'
        assert fs.read_path("/link-dir/../link-dir/os-release", limit=3) == b"ID="
        assert fs.read_path("/link-dangling") is None
        assert fs.read_path("/etc") is None
        entry = fs.lookup("/link-short")
        assert entry is not None and entry.type == "symlink"
        followed = fs.lookup("/link-short", follow=True)
        assert followed is not None and followed.path == "/etc/os-release"
        data = fs.lookup("/data")
        assert data is not None
        content = fs.read_bytes(data)
        assert b"".join(bytes(c) for c in fs.iter_chunks(data)) == content
        assert fs.read_bytes(data, limit=10) == content[:10]
        sparse = fs.read_path("/sparse")
        sparse_entry = fs.lookup("/sparse")
        assert sparse is not None and sparse_entry is not None and len(sparse) == sparse_entry.size
        if spec.name != "ext4-inline-mkfs-d":
            # (mke2fs 1.47.0 -d with inline_data drops a trailing hole: the kernel agrees it is gone.)
            assert sparse_entry.size == 3 << 20
        assert sparse[:400] == b"head" * 100 and sparse[1 << 20 : (1 << 20) + 600] == b"middle" * 100
        assert sparse[400 : 1 << 20].count(0) == (1 << 20) - 400
        assert fs.lookup("/no/such/file") is None


def test_info_matches_dumpe2fs_and_statfs(case: tuple[Case, Path], views: dict[str, Any]) -> None:
    spec, image = case
    *_, statvfs = views[spec.name]
    dump = run(["dumpe2fs", "-h", str(image)]).stdout
    fields = dict(line.split(":", 1) for line in dump.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    with open_image(image) as fs:
        info = fs.info
    assert info.features == tuple(fields["Filesystem features"].split())
    assert info.uuid == fields["Filesystem UUID"]
    assert info.hash_seed == fields["Directory Hash Seed"]
    assert info.blocks_count == int(fields["Block count"])
    assert info.inodes_count == int(fields["Inode count"])
    assert info.free_blocks == int(fields["Free blocks"])
    assert info.free_inodes == int(fields["Free inodes"])
    assert info.reserved_blocks == int(fields["Reserved block count"])
    assert info.block_size == spec.block_size == int(fields["Block size"])
    assert info.inode_size == spec.inode_size
    assert info.state == fields["Filesystem state"]
    assert info.kind == spec.mkfs[1]
    assert info.image_bytes == image.stat().st_size == info.size_bytes
    assert info.cluster_size == int(fields.get("Cluster size", info.block_size))
    if "Overhead clusters" in fields:
        assert info.overhead_bytes == int(fields["Overhead clusters"]) * info.cluster_size
    # statfs's total is everything but the filesystem's own structures (journal included).
    assert statvfs.f_blocks * statvfs.f_frsize == info.size_bytes - info.overhead_bytes
    if info.journal_inode:
        number, unit = fields["Total journal size"][:-1], fields["Total journal size"][-1]
        assert info.journal_bytes == int(number) << {"k": 10, "M": 20, "G": 30}[unit]


def test_crtime_matches_debugfs(case: tuple[Case, Path]) -> None:
    # Python 3.11 has no statx, so the creation time is checked against debugfs instead.
    spec, image = case
    with open_image(image) as fs:
        entries = [e for e in fs.walk() if e.path in ("/", "/data", "/etc", "/link-long", "/fifo")]
    for entry in entries:
        out = run(["debugfs", "-R", f"stat <{entry.inode}>", str(image)]).stdout
        match = re.search(r"crtime: 0x([0-9a-f]{8}):([0-9a-f]{8})", out)
        if spec.inode_size == 128:
            assert match is None and entry.crtime is None
            continue
        assert match is not None, out
        low, extra = int(match.group(1), 16), int(match.group(2), 16)
        expected = (low - (1 << 32) if low & 0x80000000 else low) + ((extra & 3) << 32)
        assert entry.crtime == expected, entry.path


@pytest.mark.docker
def test_real_rootfs_matches_kernel(debian_base: str, tmp_path: Path) -> None:
    # A real nex rootfs as `nexlab build` makes it: thousands of paths the cases above do not think of.
    from nexlab.builder.pipeline import build_rootfs
    from tests.conftest import SAMPLE_AGENT

    image = tmp_path / "debian.ext4"
    build_rootfs(image, agent=SAMPLE_AGENT, image=debian_base, size="200MiB")
    with mount(image, read_only=True) as m:
        order, kernel = kernel_view(m.path)
    with open_image(image) as fs:
        entries = list(fs.walk())
        hashes = fs.sha256_files(entries)
        assert fs.warnings == []
    assert [e.path for e in entries] == order
    assert len(entries) > 1000
    mismatches = [
        f"{e.path}: {field}: reader {value!r} kernel {kernel[e.path][field]!r}"
        for e in entries
        for field, value in reader_record(e, hashes).items()
        if kernel[e.path][field] != value
    ]
    assert "\n".join(mismatches) == ""
