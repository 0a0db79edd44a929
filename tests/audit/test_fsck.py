"""``e2fsck -fn`` on corrupt images: exit codes decoded right, time and output bounded.

Every image is real: ``mke2fs -d`` from a staging tree, then broken with
``debugfs -w`` the way a corrupt foreign image is broken.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from nexlab.audit import audit
from nexlab.audit.findings import Facts, Severity, fsck_errors
from nexlab.audit.fsck import fsck
from nexlab.e2fsck import exit_status
from nexlab.run import run
from tests.conftest import nexlab_cli, require


@pytest.fixture
def tools() -> None:
    require(shutil.which("mke2fs") is not None and shutil.which("e2fsck") is not None, "e2fsprogs")


def _image(tmp_path: Path, name: str, files: int = 3, *edits: str) -> Path:
    tree = tmp_path / f"{name}-tree"
    (tree / "many").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "etc" / "hostname").write_text("nexlab\n")
    for i in range(files):
        (tree / "many" / f"f{i}").write_text(f"{i}\n")
    image = tmp_path / f"{name}.ext4"
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-N", "4096", "-d", str(tree), str(image), "16M"])
    for edit in edits:
        run(["debugfs", "-w", "-R", edit, str(image)])
    return image


def test_exit_status_bits() -> None:
    assert exit_status(0).clean and exit_status(0).completed
    twelve = exit_status(12)
    assert twelve.errors_found and not twelve.completed and not twelve.clean
    assert not exit_status(8).errors_found and not exit_status(8).completed
    assert exit_status(4).errors_found and exit_status(4).completed
    assert exit_status(32).describe() == "cancelled"


def test_exit_12_is_errors_not_could_not_check(tools: None, tmp_path: Path) -> None:
    # A root inode with no links: pass 3 finds errors, then "Cannot proceed without a
    # root inode" aborts under -n, exit 12 (4 | 8). The reader still reads the tree.
    image = _image(tmp_path, "rootless", 3, "sif <2> links_count 0")
    result = fsck(image)
    assert result.exit_code == 12
    assert result.clean is False and result.finished
    assert "aborted" in result.note
    assert any("Root inode not allocated" in line for line in result.errors)
    report = audit(image, hash=False)
    found = {f.code: f for f in report.findings}
    assert found["fsck-errors"].severity == Severity.HIGH
    assert "then aborted" in found["fsck-errors"].message
    assert "fsck-skipped" not in found


def test_output_is_bounded_and_counted(tools: None, tmp_path: Path) -> None:
    # A cleared directory of 1500 files: e2fsck -fn prints ~4500 lines about them.
    image = _image(tmp_path, "orphans", 1500, "clri /many")
    full = run(["e2fsck", "-fn", str(image)], check=False)
    total = len(full.stdout.splitlines()) + len(full.stderr.splitlines())
    assert total > 1000
    result = fsck(image, keep_head=40, keep_tail=10)
    assert result.clean is False and result.exit_code == 4
    assert len(result.errors) <= 50
    assert result.dropped_lines == total - 50
    assert f"{total - 50} more lines" in result.note
    # The kept tail is e2fsck's last word, not an arbitrary middle.
    assert result.errors[-1] == [line.strip() for line in full.stdout.splitlines() if line.strip()][-1]


def test_hanging_e2fsck_is_stopped(tools: None, tmp_path: Path) -> None:
    # e2fsck on a FIFO with no writer blocks in open() for ever: a real hang.
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    started = time.monotonic()
    result = fsck(fifo, timeout=1)
    assert time.monotonic() - started < 30
    assert result.finished is False and result.clean is None and result.exit_code is None
    assert "did not finish within 1 s" in result.note
    (finding,) = fsck_errors(Facts(records={}, read=lambda _p: None, inode_size=256, fsck=result))
    assert finding.code == "fsck-unfinished" and finding.severity == Severity.MEDIUM
    assert "--fsck-timeout" in finding.fix


def _looping_image(tmp_path: Path) -> Path:
    """An image that makes ``e2fsck -fn`` restart for ever, as some foreign images did.

    Group 1's inode table is at block 0 in the primary descriptors and in the backup:
    e2fsck relocates it in memory, restarts from the disk (``-n`` never writes), finds
    block 0 again, relocates, restarts... ("Restarting e2fsck from the beginning...").
    """
    image = tmp_path / "looping.ext4"
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-O", "^flex_bg,^metadata_csum", str(image), "16M"])
    run(["debugfs", "-w", "-R", "set_bg 1 inode_table 0", str(image)])
    dump = run(["dumpe2fs", str(image)]).stdout
    primary = int(re.search(r"Primary superblock at \d+, Group descriptors at (\d+)", dump).group(1))  # type: ignore[union-attr]
    backup = int(re.search(r"Backup superblock at \d+, Group descriptors at (\d+)", dump).group(1))  # type: ignore[union-attr]
    data = bytearray(image.read_bytes())
    data[backup * 1024 : (backup + 1) * 1024] = data[primary * 1024 : (primary + 1) * 1024]
    image.write_bytes(bytes(data))
    return image


def test_looping_e2fsck_is_stopped_and_reported(tools: None, tmp_path: Path) -> None:
    image = _looping_image(tmp_path)
    started = time.monotonic()
    report = audit(image, hash=False, fsck_timeout=3)
    assert time.monotonic() - started < 60
    assert report.fsck.finished is False and report.fsck.clean is None
    # It printed without end; only the bounds were kept, the rest counted.
    assert report.fsck.dropped_lines > 1000
    assert any(line.startswith("Relocating group 1's inode table") for line in report.fsck.errors)
    found = {f.code: f for f in report.findings}
    assert "did not finish within 3 s" in found["fsck-unfinished"].message
    assert "fsck-skipped" not in found and "fsck-errors" not in found
    # The reader still read what it could (group 1's inodes are unreachable, with a warning).
    assert any(f.path == "/lost+found" for f in report.files)


def test_audit_fsck_timeout_option(tools: None, tmp_path: Path) -> None:
    # The looping image never finishes, whatever the machine's speed: the limit decides.
    looping = _looping_image(tmp_path)
    done = nexlab_cli("audit", str(looping), "--json", "--no-hash", "--fsck-timeout", "2")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["fsck"]["finished"] is False and report["fsck"]["clean"] is None
    assert report["fsck"]["dropped_lines"] > 0
    assert "fsck-unfinished" in {f["code"] for f in report["findings"]}
    gate = nexlab_cli("audit", str(looping), "--no-hash", "--fsck-timeout", "2", "--fail-on", "medium")
    assert gate.returncode == 1 and "fsck-unfinished" in gate.stderr
    # Given time, a sound image is clean.
    image = _image(tmp_path, "plain", 3)
    done = nexlab_cli("audit", str(image), "--json", "--no-hash", "--fsck-timeout", "120")
    assert json.loads(done.stdout)["fsck"]["clean"] is True
    bad = nexlab_cli("audit", str(image), "--fsck-timeout", "soon")
    assert bad.returncode == 2 and "not a number of seconds" in bad.stderr and "Traceback" not in bad.stderr
