"""The size budget against the kernel: what statvfs says, and what nex can really write."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nexlab.audit import audit
from nexlab.audit.budget import MiB
from nexlab.builder.mount import Mount, mount
from tests.conftest import SAMPLE_AGENT


def _write_as_nex(root: Path, name: str, size: int) -> subprocess.CompletedProcess[str]:
    """Write ``size`` bytes into /tmp of the mounted image as uid/gid 1000, the way a workload would."""
    script = 'head -c "$1" /dev/zero > "$2" && sync "$2"'
    return subprocess.run(
        [
            "setpriv",
            "--reuid=1000",
            "--regid=1000",
            "--clear-groups",
            "sh",
            "-c",
            script,
            "sh",
            str(size),
            str(root / "tmp" / name),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@contextlib.contextmanager
def mounted_for_nex(image: Path) -> Iterator[Mount]:
    """``image`` mounted where uid 1000 can reach it. nexlab's own mount root is root-only by
    design (issue 10), and pytest's tmp_path sits under a 0700 directory, so a directory of
    the test's own in /tmp holds the mount point."""
    reachable = Path(tempfile.mkdtemp(prefix="nexlab-test-nex-"))
    try:
        reachable.chmod(0o755)
        with mount(image, reachable / "mnt") as mounted:
            yield mounted
    finally:
        shutil.rmtree(reachable)


def test_nex_free_is_what_statvfs_gives_a_user(debian_rootfs: Path, debian_audit) -> None:  # type: ignore[no-untyped-def]
    budget = debian_audit.budget
    with mount(debian_rootfs, read_only=True) as mounted:
        stat = os.statvfs(mounted.path)
    assert budget.nex_free_bytes == stat.f_bavail * stat.f_frsize
    assert budget.filesystem_bytes - budget.overhead_bytes == stat.f_blocks * stat.f_frsize
    # Used space is the content's blocks plus the filesystem's own.
    assert abs(budget.used_bytes - budget.allocated_bytes - budget.overhead_bytes) < 0.01 * budget.used_bytes


def test_largest_workload_really_fits(debian_rootfs: Path, debian_audit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "copy.ext4"
    shutil.copyfile(debian_rootfs, copy)
    largest = debian_audit.budget.largest_workload_bytes
    assert largest > 0
    with mounted_for_nex(copy) as mounted:
        done = _write_as_nex(mounted.path, "workload", largest)
        assert done.returncode == 0, done.stderr
        # And the margin is real room, not an accident: a bit more than all nex has does not fit.
        (mounted.path / "tmp" / "workload").unlink()
        too_much = _write_as_nex(mounted.path, "too-much", debian_audit.budget.nex_free_bytes + MiB)
        assert too_much.returncode != 0
        assert "No space left" in too_much.stderr


def test_size_advice_makes_the_workload_fit(debian_base: str, debian_audit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from nexlab.builder.pipeline import build_rootfs

    workload = debian_audit.budget.nex_free_bytes + 40 * MiB
    fit = audit(debian_audit.image, workload=workload, hash=False, fsck_check=False).budget.workload
    assert fit is not None and not fit.fits and fit.shortfall > 40 * MiB
    assert fit.needed_image_size % MiB == 0
    bigger = tmp_path / "bigger.ext4"
    build_rootfs(bigger, agent=SAMPLE_AGENT, image=debian_base, size=fit.needed_image_size)
    again = audit(bigger, workload=workload, hash=False, fsck_check=False).budget.workload
    assert again is not None and again.fits
    with mounted_for_nex(bigger) as mounted:
        done = _write_as_nex(mounted.path, "workload", workload)
        assert done.returncode == 0, done.stderr


def test_duplicates_count_copies_not_hardlinks(bad_audit) -> None:  # type: ignore[no-untyped-def]
    groups = [g for g in bad_audit.budget.duplicates if g.paths[0].startswith("/usr/local/share/dup/")]
    assert len(groups) == 1
    (group,) = groups
    # a and b are two inodes with the same bytes; a-hardlink shares a's inode and costs nothing.
    assert group.paths == ("/usr/local/share/dup/a", "/usr/local/share/dup/b")
    assert group.reclaimable == MiB
    assert bad_audit.budget.duplicate_bytes >= MiB


def test_reclaimable_and_top_lists(debian_audit) -> None:  # type: ignore[no-untyped-def]
    budget = debian_audit.budget
    reclaim = {category: n for category, n, _files in budget.reclaimable}
    assert reclaim["docs"] > 0 and reclaim["man pages"] > 0 and reclaim["locales"] > 0
    assert budget.top_directories[0][0] == "/usr"
    sizes = [n for _path, n in budget.top_directories]
    assert sizes == sorted(sizes, reverse=True)
    assert budget.top_packages[0][1] == max(p.size for p in debian_audit.packages)


def test_no_hash_skips_duplicates(debian_rootfs: Path) -> None:
    result = audit(debian_rootfs, hash=False, fsck_check=False)
    assert all(r.sha256 is None for r in result.files)
    assert result.budget.duplicates == ()
