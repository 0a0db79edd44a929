"""The JSON contract: every key and type, and the inventory against the kernel's view of the image."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from nexlab.audit import audit
from nexlab.builder.mount import mount
from nexlab.run import run
from tests.conftest import nexlab_cli

FILE_KEYS = {
    "path": str,
    "type": str,
    "mode": int,
    "uid": int,
    "gid": int,
    "size": int,
    "allocated": int,
    "nlink": int,
    "inode": int,
    "mtime": int,
    "sha256": (str, type(None)),
    "target": (str, type(None)),
    "xattrs": dict,
    "package": (str, type(None)),
}
PACKAGE_KEYS = {"name": str, "version": str, "manager": str, "declared_size": int, "size": int, "files": int}
FINDING_KEYS = {"severity": str, "code": str, "message": str, "fix": str, "paths": list}
FILESYSTEM_KEYS = {
    "size_bytes": int,
    "block_size": int,
    "blocks_count": int,
    "free_blocks": int,
    "reserved_blocks": int,
    "inodes_count": int,
    "free_inodes": int,
    "features": list,
    "uuid": str,
    "label": str,
    "state": str,
    "created": (int, type(None)),
    "last_mount": (int, type(None)),
    "last_write": (int, type(None)),
    "overhead_bytes": int,
    "journal_bytes": int,
    "needs_recovery": bool,
}
BUDGET_KEYS = {
    "image_bytes": int,
    "used_bytes": int,
    "free_bytes": int,
    "reserved_bytes": int,
    "overhead_bytes": int,
    "apparent_bytes": int,
    "allocated_bytes": int,
    "nex_free_bytes": int,
    "largest_workload_bytes": int,
    "top_directories": list,
    "top_packages": list,
    "duplicate_files": int,
    "duplicate_bytes": int,
    "duplicates": list,
    "reclaimable": list,
    "unowned_files": int,
    "unowned_bytes": int,
    "workload": (dict, type(None)),
}
TYPES = {"file", "dir", "symlink", "char", "block", "fifo", "socket"}


def _check(obj: dict[str, Any], keys: dict[str, Any], exact: bool = False) -> None:
    if exact:
        assert set(obj) == set(keys)
    for key, kind in keys.items():
        assert key in obj, key
        assert isinstance(obj[key], kind) and not (kind is int and isinstance(obj[key], bool)), (key, obj[key])


def test_every_key_and_type(debian_rootfs: Path) -> None:
    done = nexlab_cli("audit", str(debian_rootfs), "--json", "--workload", "8MiB")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {"filesystem", "files", "packages", "budget", "findings"} <= set(data)
    _check(data["filesystem"], FILESYSTEM_KEYS)
    _check(data["budget"], BUDGET_KEYS)
    assert data["budget"]["workload"]["fits"] is True
    assert data["files"][0]["path"] == "/"
    assert [f["path"] for f in data["files"]] == sorted(f["path"] for f in data["files"])
    for entry in data["files"]:
        _check(entry, FILE_KEYS, exact=True)
        assert entry["type"] in TYPES
        assert 0 <= entry["mode"] <= 0o7777
        assert (entry["sha256"] is not None) == (entry["type"] == "file")
        assert (entry["target"] is not None) == (entry["type"] == "symlink")
        assert all(len(v) == 64 for v in entry["xattrs"].values())
    for package in data["packages"]:
        _check(package, PACKAGE_KEYS, exact=True)
        assert package["manager"] in ("apk", "dpkg")
    for finding in data["findings"]:
        _check(finding, FINDING_KEYS, exact=True)
        assert finding["severity"] in ("info", "low", "medium", "high", "critical")
    # Sorted keys: the same image gives the same bytes.
    assert done.stdout == json.dumps(data, sort_keys=True) + "\n"


def _kernel_view(root: Path) -> dict[str, dict[str, Any]]:
    view: dict[str, dict[str, Any]] = {}
    for directory, dirs, files in os.walk(root):
        for name in [".", *dirs, *files] if directory == str(root) else [*dirs, *files]:
            full = Path(directory) / name if name != "." else root
            st = full.lstat()
            rel = "/" + os.path.relpath(full, root) if full != root else "/"
            item: dict[str, Any] = {
                "mode": stat.S_IMODE(st.st_mode),
                "uid": st.st_uid,
                "gid": st.st_gid,
                "nlink": st.st_nlink,
                "inode": st.st_ino,
                "mtime": int(st.st_mtime // 1),
                "allocated": st.st_blocks * 512,
            }
            if stat.S_ISREG(st.st_mode):
                item["size"] = st.st_size
                item["sha256"] = hashlib.sha256(full.read_bytes()).hexdigest()
            if stat.S_ISLNK(st.st_mode):
                item["target"] = os.readlink(full)
            view[os.fsdecode(os.fsencode(rel))] = item
    return view


def test_inventory_matches_the_kernel(debian_audit, debian_rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    with mount(debian_rootfs, read_only=True) as mounted:
        kernel = _kernel_view(mounted.path)
    ours = {r.path: r for r in debian_audit.files}
    assert set(ours) == set(kernel)
    for path, expected in kernel.items():
        record = ours[path]
        for key, value in expected.items():
            assert getattr(record, key) == value, (path, key)


def test_undecodable_names_and_xattrs(bare_image: Path, bad_audit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    names = [os.fsencode(r.path) for r in bad_audit.files]
    assert b"/usr/local/share/bad-\xff-name" in names
    # ASCII JSON keeps the byte as a surrogate escape and reads back to the same bytes.
    text = json.dumps(bad_audit.to_json_dict(), sort_keys=True)
    assert text.isascii()
    back = {os.fsencode(f["path"]) for f in json.loads(text)["files"]}
    assert b"/usr/local/share/bad-\xff-name" in back

    copy = tmp_path / "xattr.ext4"
    shutil.copyfile(bare_image, copy)
    run(["debugfs", "-w", "-R", "ea_set /etc/passwd user.nexlab hello", str(copy)])
    run(["debugfs", "-w", "-R", f"ea_set /etc/shadow user.big {'x' * 900}", str(copy)])
    files = {r.path: r for r in audit(copy).files}
    assert files["/etc/passwd"].xattrs == {"user.nexlab": hashlib.sha256(b"hello").hexdigest()}
    assert files["/etc/shadow"].xattrs == {"user.big": hashlib.sha256(b"x" * 900).hexdigest()}
