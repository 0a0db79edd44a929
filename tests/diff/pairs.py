"""Generated image pairs with known differences, made with ``mkfs.ext4 -d`` from staging trees.

``base_tree`` writes a small tree; ``mutate`` changes one path per compared field
(and adds, removes, changes a type), and ``EXPECTED`` says what the differ must
report for each. Times are pinned in both trees so only the intended mtime
change shows.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from nexlab.builder.allocate import allocate
from nexlab.builder.mkfs import mkfs
from nexlab.builder.normalize import clamp_times

T = 1_700_000_000
UUID_A = "00000000-0000-4000-8000-00000000000a"
UUID_B = "00000000-0000-4000-8000-00000000000b"

#: A file added in B whose name is not UTF-8 and holds a terminal escape sequence.
HOSTILE_NAME = b"/bad-\xff-\x1b[2J"
HOSTILE_PATH = "/etc" + os.fsdecode(HOSTILE_NAME)
#: path -> (change, fields) that the differ must find between base and mutated trees.
EXPECTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "/etc/new-file": ("added", ()),
    "/usr/share/doc/readme": ("removed", ()),
    "/data/thing": ("modified", ("type", "mode", "size")),
    "/etc/conf": ("modified", ("mode",)),
    "/etc/owned": ("modified", ("uid",)),
    "/etc/grouped": ("modified", ("gid",)),
    "/lib/libx.so": ("modified", ("size", "sha256")),
    "/bin/tool": ("modified", ("sha256",)),
    "/bin/link": ("modified", ("target",)),
    "/etc/xattr-file": ("modified", ("xattrs",)),
    "/etc/old-time": ("modified", ("mtime",)),
    "/etc/shadow": ("modified", ("sha256",)),
    "/var/log/dpkg.log": ("modified", ("size", "sha256")),
    "/etc/ssh/ssh_host_ed25519_key": ("modified", ("sha256",)),
    HOSTILE_PATH: ("added", ()),
}
#: Files added under /many in B: the directory grows, but a directory's size is not compared.
MANY = 300


def base_tree(root: Path) -> None:
    files = {
        "etc/conf": b"setting = 1\n",
        "etc/owned": b"owned\n",
        "etc/grouped": b"grouped\n",
        "etc/xattr-file": b"x\n",
        "etc/old-time": b"same bytes\n",
        "etc/shadow": b"root:*:19675:0:99999:7:::\n",
        "etc/ssh/ssh_host_ed25519_key": b"KEY-A-0123456789\n",
        "lib/libx.so": b"\x7fELF" + bytes(range(256)) * 16,
        "bin/tool": b"#!/bin/sh\necho version 1\n",
        "usr/share/doc/readme": b"read me\n",
        "var/log/dpkg.log": b"2023-11-14 install a\n",
        "data/thing": b"a file that becomes a directory\n",
        "many/keep": b"k\n",
    }
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, 0o644)
    (root / "bin" / "link").symlink_to("tool")
    os.chmod(root / "etc" / "shadow", 0o640)
    os.setxattr(root / "etc" / "xattr-file", "user.nexlab", b"1")
    clamp_times(root, T)


def mutate(root: Path) -> None:
    """Apply one change per entry of ``EXPECTED`` (plus ``MANY`` files under /many)."""
    (root / "etc" / "new-file").write_bytes(b"new\n")
    (root / "usr" / "share" / "doc" / "readme").unlink()
    (root / "data" / "thing").unlink()
    (root / "data" / "thing").mkdir(mode=0o755)
    os.chmod(root / "data" / "thing", 0o755)
    os.chmod(root / "etc" / "conf", 0o600)
    os.chown(root / "etc" / "owned", 1000, 0)
    os.chown(root / "etc" / "grouped", 0, 1000)
    with (root / "lib" / "libx.so").open("ab") as handle:
        handle.write(b"more")
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\necho version 2\n")
    (root / "bin" / "link").unlink()
    (root / "bin" / "link").symlink_to("tool2")
    os.setxattr(root / "etc" / "xattr-file", "user.nexlab", b"2")
    (root / "etc" / "shadow").write_bytes(b"root:*:20782:0:99999:7:::\n")
    (root / "var" / "log" / "dpkg.log").write_bytes(b"2026-11-25 install a\n2026-11-25 install b\n")
    (root / "etc" / "ssh" / "ssh_host_ed25519_key").write_bytes(b"KEY-B-9876543210\n")
    # A name no terminal should see raw: an undecodable byte and an escape sequence.
    fd = os.open(os.fsencode(root / "etc") + HOSTILE_NAME, os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    for n in range(MANY):
        (root / "many" / f"file-with-a-long-name-{n:04d}").write_bytes(b"")
    clamp_times(root, T)
    os.utime(root / "etc" / "old-time", (T - 1000, T - 1000))


def make_image(tree: Path, image: Path, *, uuid: str = UUID_A, size: str = "16MiB") -> Path:
    allocate(image, size)
    mkfs(image, uuid=uuid, hash_seed=uuid, populate_from=tree, env={"E2FSPROGS_FAKE_TIME": str(T)})
    return image


def make_pair(workdir: Path) -> tuple[Path, Path]:
    """(A, B): the base tree and the mutated one."""
    tree_a, tree_b = workdir / "tree-a", workdir / "tree-b"
    tree_a.mkdir()
    base_tree(tree_a)
    shutil.copytree(tree_a, tree_b, symlinks=True)
    mutate(tree_b)
    return make_image(tree_a, workdir / "a.ext4"), make_image(tree_b, workdir / "b.ext4", uuid=UUID_B)
