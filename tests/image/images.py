"""Small real ext2/3/4 images for the reader tests, made with mke2fs and the kernel.

Each case is a frozen ``Case``: mke2fs options plus how to populate (a loop
mount written by the kernel, or ``mke2fs -d`` from a staging tree). The tree
has the awkward things: sparse and fragmented files, uninitialised extents,
hardlinks, devices, FIFOs, sockets, xattrs in the inode and in an external
block, ACLs, long and short symlinks, non-UTF-8 names, setuid, 32-bit ids,
times past 2038 and before 1970, and a 3000-entry (htree) directory.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from nexlab.builder.mount import mount
from nexlab.run import run

FAKE_TIME = "1700000000"


@dataclass(frozen=True)
class Case:
    name: str
    mkfs: tuple[str, ...]
    size_mib: int = 96
    via: str = "mount"  # or "mkfs-d"
    block_size: int = 4096
    inode_size: int = 256
    big_dir: bool = False
    triple_indirect: bool = False
    fsck_rehash: bool = False

    def argv(self, image: Path, staging: Path | None) -> list[str]:
        argv = ["mke2fs", "-q", "-F", "-b", str(self.block_size), "-I", str(self.inode_size), *self.mkfs]
        if staging is not None:
            argv += ["-d", str(staging)]
        return [*argv, str(image), f"{self.size_mib}M"]


CASES = (
    Case("ext4-4k", ("-t", "ext4"), big_dir=True, fsck_rehash=True),
    Case("ext4-1k-128-no64bit", ("-t", "ext4", "-O", "^64bit,^metadata_csum"), block_size=1024, inode_size=128),
    Case("ext4-inline", ("-t", "ext4", "-O", "inline_data")),
    Case("ext4-mkfs-d", ("-t", "ext4"), via="mkfs-d"),
    Case("ext4-inline-mkfs-d", ("-t", "ext4", "-O", "inline_data"), via="mkfs-d"),
    # Descriptors spread over metagroups (96 groups of 1 MiB, 16 descriptors a block).
    Case("ext4-meta_bg", ("-t", "ext4", "-O", "meta_bg,^resize_inode", "-g", "1024"), block_size=1024),
    # Xattr values too big for a block live in their own inode.
    Case("ext4-ea_inode", ("-t", "ext4", "-O", "ea_inode")),
    # Clusters of 16 blocks (bigalloc): more blocks per group than one bitmap block has bits.
    Case("ext4-bigalloc", ("-t", "ext4", "-O", "bigalloc", "-C", "65536")),
    # bigalloc on 1 KiB blocks: first_data_block is 0, yet the superblock is block 1.
    Case("ext4-bigalloc-1k", ("-t", "ext4", "-O", "bigalloc", "-C", "16384"), block_size=1024),
    # Superblock backups only in the groups s_backup_bgs names (6 groups of 16 MiB).
    Case("ext4-sparse_super2", ("-t", "ext4", "-O", "sparse_super2", "-g", "4096")),
    Case("ext4-no-extent", ("-t", "ext4", "-O", "^extent,^64bit"), block_size=1024),
    Case(
        "ext3-1k",
        (
            "-t",
            "ext3",
        ),
        block_size=1024,
        inode_size=128,
        big_dir=True,
        triple_indirect=True,
    ),
    Case(
        "ext2-4k",
        (
            "-t",
            "ext2",
        ),
        inode_size=128,
    ),
)

ACL = (2).to_bytes(4, "little") + b"".join(
    tag.to_bytes(2, "little") + perm.to_bytes(2, "little") + ident.to_bytes(4, "little")
    for tag, perm, ident in (
        (0x01, 6, 0xFFFFFFFF),
        (0x02, 4, 1000),
        (0x04, 4, 0xFFFFFFFF),
        (0x10, 4, 0xFFFFFFFF),
        (0x20, 4, 0xFFFFFFFF),
    )
)


def populate(root: Path, case: Case, *, kernel: bool) -> None:
    """Write the test tree under ``root`` (a mounted image, or a staging directory)."""
    bs = case.block_size
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text('ID=nexlab\nPRETTY_NAME="nexlab test"\n')
    (root / "empty").write_bytes(b"")
    (root / "tiny").write_bytes(b"tiny file, inline if it can be\n")
    (root / "small100").write_bytes(bytes(range(100)))
    (root / "data").write_bytes(os.urandom(3 * bs + 123))
    (root / "dup").write_bytes((root / "data").read_bytes())
    os.link(root / "data", root / "data.hardlink")
    # Sparse: data, a hole, data, and a trailing hole.
    with open(root / "sparse", "wb") as f:
        f.write(b"head" * 100)
        f.seek(1 << 20)
        f.write(b"middle" * 100)
        f.truncate(3 << 20)
    # Fragmented: every other block, so the extent tree needs depth 1 (4 KiB) or 2 (1 KiB blocks).
    with open(root / "fragmented", "wb") as f:
        for i in range(400 if bs == 1024 else 200):
            f.seek(2 * i * bs)
            f.write(bytes([i % 251 + 1]) * bs)
    if kernel and "^extent" not in ",".join(case.mkfs) and "ext2" not in case.mkfs and "ext3" not in case.mkfs:
        # Preallocated, partly written: the rest are uninitialised extents, read as zeros.
        fd = os.open(root / "prealloc", os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.posix_fallocate(fd, 0, 64 * bs)
            os.pwrite(fd, b"written", 10 * bs)
        finally:
            os.close(fd)
    if case.triple_indirect:
        with open(root / "triple", "wb") as f:
            f.write(b"start")
            f.seek(70 << 20)
            f.write(b"past the double-indirect range")
    # Names and modes.
    os.close(os.open(os.path.join(os.fsencode(root), b"caf\xe9-latin1"), os.O_CREAT | os.O_WRONLY, 0o644))
    (root / "naïve ünïcode").write_text("utf-8 name\n")
    (root / "setuid").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "setuid", 0o4755)
    (root / "shared").mkdir()
    os.chmod(root / "shared", 0o3777)
    (root / "owned").write_bytes(b"owner\n")
    os.chown(root / "owned", 100000, 200000)
    os.chown(root / "shared", 1000, 65536)
    # Symlinks: fast (<60 bytes), slow, absolute (must never reach the host), dangling.
    os.symlink("etc/os-release", root / "link-short")
    os.symlink("x" * 200, root / "link-long")
    os.symlink("/etc/os-release", root / "link-abs")
    os.symlink("nowhere/at/all", root / "link-dangling")
    os.symlink("etc", root / "link-dir")
    # Special files.
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(root / "disk", stat.S_IFBLK | 0o660, os.makedev(8, 1))
    os.mknod(root / "bigdev", stat.S_IFCHR | 0o600, os.makedev(300, 70000))
    with contextlib.closing(socket.socket(socket.AF_UNIX)) as sock:
        sock.bind(str(root / "sock"))
    # Xattrs: small ones fit in a 256-byte inode, the big one needs the external block.
    target = root / "data"
    os.setxattr(target, "user.small", b"v")
    os.setxattr(target, "user.big", bytes(range(256)) * (bs // 512))
    os.setxattr(target, "trusted.note", b"trusted")
    os.setxattr(root / "etc", "security.label", b"system_u:object_r:etc_t")
    os.setxattr(root / "owned", "user.empty", b"")
    if kernel:
        os.setxattr(root / "owned", "system.posix_acl_access", ACL)
    if "ea_inode" in ",".join(case.mkfs):
        os.setxattr(root / "owned", "user.huge", bytes(range(250)) * 80)
    # Times: past 2038 and before 1970 need 256-byte inodes.
    if case.inode_size >= 256:
        os.utime(root / "tiny", (2**32 + 1000, 2**32 + 5000))
        os.utime(root / "small100", (-1000, -86400 * 365))
    # A deeper tree.
    deep = root / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    (deep / "leaf").write_text("deep\n")
    if case.big_dir:
        many = root / "many"
        many.mkdir()
        for i in range(3000):
            (many / f"entry-{i:05d}-{'y' * (i % 40)}").write_bytes(b"%d\n" % i)


def make_image(case: Case, workdir: Path) -> Path:
    image = workdir / f"{case.name}.ext4"
    env = {"E2FSPROGS_FAKE_TIME": FAKE_TIME}
    if case.via == "mkfs-d":
        staging = workdir / f"{case.name}-staging"
        staging.mkdir()
        populate(staging, case, kernel=False)
        run(case.argv(image, staging), env=env)
    else:
        run(case.argv(image, None), env=env)
        with mount(image) as m:
            populate(m.path, case, kernel=True)
    if case.fsck_rehash:
        run(["e2fsck", "-fyD", str(image)], check=False)
    run(["e2fsck", "-fn", str(image)])
    return image


@dataclass(frozen=True)
class SmallCase:
    """A small image made with ``mke2fs -d`` alone (no root), for fuzzing and hostile edits."""

    name: str
    mkfs: tuple[str, ...]
    size_mib: int = 4


SMALL_CASES = (
    SmallCase("ext4", ("-t", "ext4", "-b", "4096", "-O", "^has_journal", "-N", "512")),
    SmallCase("ext4-inline-1k", ("-t", "ext4", "-b", "1024", "-I", "256", "-O", "inline_data", "-J", "size=1")),
    SmallCase("ext3-1k", ("-t", "ext3", "-b", "1024", "-I", "128", "-J", "size=1")),
    # Clusters of 4 blocks, with first_data_block 0 on 1 KiB blocks.
    SmallCase("ext4-bigalloc-1k", ("-t", "ext4", "-b", "1024", "-O", "bigalloc", "-C", "4096", "-J", "size=1"), 8),
)


def small_tree(root: Path, block_size: int) -> None:
    """What the small images hold: a bit of everything the reader parses, no root needed."""
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text("ID=small\n")
    (root / "tiny").write_bytes(b"inline me\n")
    (root / "medium").write_bytes(bytes(range(256)) * 40)
    # Past the 12 direct blocks and the single indirect block on 1 KiB blocks.
    (root / "big").write_bytes(bytes(i % 253 for i in range(300_000)))
    os.link(root / "big", root / "big.link")
    with open(root / "fragmented", "wb") as f:
        for i in range(40):
            f.seek(2 * i * block_size)
            f.write(bytes([i + 1]) * block_size)
    os.symlink("etc/os-release", root / "short-link")
    os.symlink("y" * 120, root / "long-link")
    os.setxattr(root / "medium", "user.small", b"1")
    os.setxattr(root / "medium", "user.big", b"x" * (block_size // 2))
    many = root / "many"
    many.mkdir()
    for i in range(300):
        (many / f"f{i:04d}-{'z' * (i % 30)}").write_bytes(b"%d" % i)
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "leaf").write_text("leaf\n")


def make_small_image(case: SmallCase, workdir: Path) -> Path:
    staging = workdir / f"{case.name}-tree"
    image = workdir / f"{case.name}.img"
    block_size = int(case.mkfs[case.mkfs.index("-b") + 1])
    staging.mkdir()
    small_tree(staging, block_size)
    run(
        ["mke2fs", "-q", "-F", *case.mkfs, "-d", str(staging), str(image), f"{case.size_mib}M"],
        env={"E2FSPROGS_FAKE_TIME": FAKE_TIME},
    )
    # Rebuilds the directories as htrees, so the fuzzer also hits index blocks.
    run(["e2fsck", "-fyD", str(image)], check=False)
    return image
