"""One temporary base per run: everything under it, removed at exit, kept (and named) with --debug."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from nexlab import tempdirs
from nexlab.run import run
from tests.conftest import nexlab_cli

_SCRIPT = """
import sys
from nexlab import tempdirs
if sys.argv[1] == "keep":
    tempdirs.keep()
with tempdirs.directory("probe") as scratch:
    (scratch / "file").write_text("x")
    print(tempdirs.where(), scratch, flush=True)
    if sys.argv[2] == "fail":
        raise SystemExit(3)
"""


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        timeout=60,
    )
    base, scratch = (Path(word) for word in done.stdout.split())
    return done, base, scratch


def test_the_base_is_private_named_for_the_run_and_removed_at_exit(tmp_path: Path) -> None:
    done, base, scratch = _run(tmp_path, "no", "fail")
    assert done.returncode == 3
    assert base.parent == tmp_path and scratch.parent == base
    assert re.fullmatch(r"nexlab-run-nx\d+-[0-9a-f]{8}-.+", base.name)
    assert scratch.name.startswith("nexlab-probe-nx")
    assert not base.exists()  # the failed block and the exit both cleaned up
    assert list(tmp_path.iterdir()) == []


def test_kept_temporaries_stay_and_are_not_reaped(tmp_path: Path) -> None:
    done, base, scratch = _run(tmp_path, "keep", "ok")
    assert done.returncode == 0, done.stderr
    assert (scratch / "file").read_text() == "x"
    # The run is over: a reaper would remove a recorded directory of a dead process; a kept one has no record.
    from nexlab.host import owned

    records = [r for r in owned.records_dir().iterdir() if os.path.realpath(r) == str(base)]
    assert records == []
    shutil.rmtree(base)


def test_a_block_removes_its_directory_but_the_base_lives_on() -> None:
    with tempdirs.directory("probe") as scratch:
        (scratch / "sub").mkdir()
        (scratch / "sub" / "f").write_text("x")
    assert not scratch.exists() and scratch.parent == tempdirs.base() and tempdirs.base().is_dir()
    assert os.stat(tempdirs.base()).st_mode & 0o777 == 0o700


def _gz_image(tmp_path: Path) -> Path:
    image = tmp_path / "small.ext4"
    with image.open("wb") as handle:
        handle.truncate(8 * 2**20)
    run(["mkfs.ext4", "-q", "-F", str(image)])
    packed = tmp_path / "small.ext4.gz"
    with image.open("rb") as source, gzip.open(packed, "wb") as out:
        shutil.copyfileobj(source, out)
    image.unlink()
    return packed


def test_debug_keeps_the_decompressed_copy_and_says_where(tmp_path: Path) -> None:
    scratch_parent = tmp_path / "tmp"
    scratch_parent.mkdir()
    packed = _gz_image(tmp_path)
    done = nexlab_cli("--debug", "audit", str(packed), "--no-fsck", env={"TMPDIR": str(scratch_parent)})
    assert done.returncode == 0, done.stderr[-2000:]
    kept = re.search(r"temporary files kept in (\S+)", done.stderr)
    assert kept, done.stderr[-2000:]
    base = Path(kept.group(1))
    assert base.parent == scratch_parent
    assert [p.name for p in base.glob("nexlab-image-*/*")] == ["small.ext4"]
    shutil.rmtree(base)
    # Without --debug, nothing is left.
    plain = nexlab_cli("audit", str(packed), "--no-fsck", env={"TMPDIR": str(scratch_parent)})
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "kept" not in plain.stderr and list(scratch_parent.iterdir()) == []


def test_the_base_of_a_killed_run_is_reaped(tmp_path: Path) -> None:
    from nexlab.builder.reaper import reap

    script = (
        "import os, signal\nfrom nexlab import tempdirs\n"
        "print(tempdirs.mkdtemp('probe'), flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp_path)}
    )
    assert done.returncode == -9
    scratch = Path(done.stdout.strip())
    assert scratch.is_dir()  # SIGKILL: no clean-up ran
    removed = reap(docker=False)
    assert any(str(scratch.parent) in line for line in removed), removed
    assert list(tmp_path.iterdir()) == []
