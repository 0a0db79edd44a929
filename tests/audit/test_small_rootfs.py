"""The auditor on small rootfs images made with ``mkfs.ext4 -d``: no Docker, part of the fast lane.

``nex_tree`` writes the smallest tree that is a good Nex rootfs for an
OpenRC-on-busybox base (agent, its service in a runlevel, nex 1000:1000, /tmp
1777, a serial getty, a locked root, an apk database). The good image must
give no finding above ``low``; each ``BREAKS`` entry changes the tree in one way
and must give exactly its rule's finding, with the registry's severity.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from nexlab.audit.findings import BY_CODE, Severity
from tests.conftest import require, scratch

AGENT = b"#!/bin/sh\nexec sleep 1000\n"
APK_DB = """P:busybox
V:1.36.1-r5
I:4096
F:bin
R:busybox

P:nex-agent
V:1.0
I:27
F:usr/local/bin
R:agent
"""


def _write(root: Path, path: str, data: bytes | str, mode: int = 0o644, owner: int = 0) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)
    target.chmod(mode)
    os.chown(target, owner, owner)


def _link(root: Path, path: str, target: str) -> None:
    link = root / path.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def nex_tree(root: Path) -> None:
    _write(root, "/bin/busybox", b"\x7fELF fake BusyBox v1.36.1 multi-call binary\n", 0o755)
    _link(root, "/sbin/init", "/bin/busybox")
    _write(root, "/sbin/openrc-run", b"#!/bin/busybox sh\n", 0o755)
    _write(root, "/usr/local/bin/agent", AGENT, 0o755)
    _write(root, "/etc/init.d/agent", "#!/sbin/openrc-run\ncommand=/usr/local/bin/agent\n", 0o755)
    _link(root, "/etc/runlevels/boot/agent", "/etc/init.d/agent")
    _write(root, "/etc/init.d/agetty.ttyS0", "#!/sbin/openrc-run\n", 0o755)
    _link(root, "/etc/runlevels/default/agetty.ttyS0", "/etc/init.d/agetty.ttyS0")
    _write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnex:x:1000:1000::/home/nex:/bin/sh\n")
    _write(root, "/etc/shadow", "root:*:19000:0:99999:7:::\nnex:!:19000:0:99999:7:::\n", 0o640)
    _write(root, "/etc/inittab", "::sysinit:/sbin/openrc sysinit\n")
    _write(root, "/lib/apk/db/installed", APK_DB)
    (root / "home" / "nex").mkdir(parents=True)
    os.chown(root / "home" / "nex", 1000, 1000)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)


def _chmod(path: str, mode: int) -> Callable[[Path], None]:
    return lambda root: (root / path.lstrip("/")).chmod(mode)


def _remove(path: str) -> Callable[[Path], None]:
    return lambda root: (root / path.lstrip("/")).unlink()


#: code -> how to break the good tree so that exactly that rule fires.
BREAKS: dict[str, Callable[[Path], None]] = {
    "agent-missing": _remove("/usr/local/bin/agent"),
    "agent-not-executable": _chmod("/usr/local/bin/agent", 0o644),
    "service-missing": _remove("/etc/init.d/agent"),
    "service-not-enabled": _remove("/etc/runlevels/boot/agent"),
    "service-interpreter-missing": _remove("/sbin/openrc-run"),
    "nex-user": lambda root: _write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
    "nex-home": lambda root: os.chown(root / "home" / "nex", 0, 0),
    "tmp-mode": _chmod("/tmp", 0o755),
    "no-serial-getty": _remove("/etc/runlevels/default/agetty.ttyS0"),
    "root-password-empty": lambda root: _write(root, "/etc/shadow", "root::19000:0:99999:7:::\n", 0o640),
    "setuid": _chmod("/bin/busybox", 0o4755),
    "world-writable": lambda root: _write(root, "/etc/open", "x", 0o666),
    "boot-writable": lambda root: os.chown(root / "etc" / "init.d" / "agent", 1000, 1000),
}


def make_image(workdir: Path, name: str, change: Callable[[Path], None] | None = None, *extra: str) -> Path:
    require(shutil.which("mkfs.ext4") is not None, "mkfs.ext4 (e2fsprogs)")
    root = workdir / f"{name}-tree"
    nex_tree(root)
    if change is not None:
        change(root)
    image = workdir / f"{name}.ext4"
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", "-m", "0", *extra, "-d", str(root), str(image), "16M"],
        check=True,
        env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"},
    )
    return image


@pytest.fixture(scope="module")
def workdir(module_tmp: Path, is_root: bool) -> Path:
    # Root so that the staging tree can hold the owners (uid 1000) the rules look at.
    return scratch(module_tmp, "small-rootfs")


@pytest.fixture(scope="module")
def good(workdir: Path):  # type: ignore[no-untyped-def]
    from nexlab.audit import audit

    return audit(make_image(workdir, "good"))


def test_a_good_small_rootfs_has_no_finding_above_low(good) -> None:  # type: ignore[no-untyped-def]
    above_low = [f for f in good.findings if f.severity.rank > Severity.LOW.rank]
    assert above_low == [], [f"{f.code}: {f.message}" for f in above_low]
    assert good.fsck.clean is True


@pytest.mark.parametrize("code", sorted(BREAKS))
def test_each_break_gives_its_rule(workdir: Path, code: str) -> None:
    from nexlab.audit import audit

    result = audit(make_image(workdir, code, BREAKS[code]), fsck_check=False)
    found = {f.code: f for f in result.findings if f.severity.rank > Severity.LOW.rank or f.code == code}
    assert code in found, f"{code} not reported; found {sorted(found)}"
    assert found[code].severity == BY_CODE[code].severity
    # Nothing else above low breaks with it (setuid is low itself, so the good image's lows don't count).
    others = [c for c, f in found.items() if c != code and f.severity.rank > Severity.LOW.rank]
    assert others == [], f"breaking {code} also gave {others}"


def test_small_inodes_rule(workdir: Path) -> None:
    from nexlab.audit import audit

    result = audit(make_image(workdir, "inode128", None, "-I", "128"), fsck_check=False)
    assert "small-inodes" in {f.code for f in result.findings}


def test_packages_and_budget(good) -> None:  # type: ignore[no-untyped-def]
    by_name = {p.name: p for p in good.packages}
    assert set(by_name) == {"busybox", "nex-agent"}
    assert by_name["nex-agent"].files == 1 and by_name["nex-agent"].size == 4096  # one 4 KiB block
    files = {r.path: r for r in good.files}
    assert files["/usr/local/bin/agent"].package == "nex-agent"
    assert files["/usr/local/bin/agent"].sha256 is not None
    budget = good.budget
    assert 0 < budget.nex_free_bytes <= budget.free_bytes < budget.filesystem_bytes
    assert budget.largest_workload_bytes == budget.nex_free_bytes - budget.margin_bytes


def test_json_contract_of_a_small_rootfs(good) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(json.dumps(good.to_json_dict()))
    assert doc["version"] == 2
    assert set(doc) >= {"image", "filesystem", "files", "packages", "budget", "findings", "fsck", "warnings"}
    paths = [f["path"] for f in doc["files"]]
    assert paths == sorted(paths) and "/" in paths
    for finding in doc["findings"]:
        assert set(finding) == {"severity", "code", "message", "fix", "paths"}
        assert finding["severity"] == BY_CODE[finding["code"]].severity.value
