"""``e2fsck.check`` / ``ensure_clean``: the one ``e2fsck -fn`` of the builds and the audit."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexlab import e2fsck
from nexlab.errors import CommandError
from nexlab.run import run


def _image(tmp_path: Path, name: str = "fs.ext4") -> Path:
    image = tmp_path / name
    with image.open("wb") as handle:
        handle.truncate(8 * 2**20)
    run(["mkfs.ext4", "-q", "-F", str(image)])
    return image


def test_a_fresh_image_is_clean_and_unchanged(tmp_path: Path) -> None:
    image = _image(tmp_path)
    before = image.read_bytes()
    checked = e2fsck.ensure_clean(image)
    assert checked.clean and checked.finished and checked.status == e2fsck.exit_status(0)
    assert any(line.startswith("Pass 5") for line in checked.lines)  # its report is kept
    assert image.read_bytes() == before  # -n: read-only


def test_a_corrupt_image_is_returned_by_check_and_raised_by_ensure_clean(tmp_path: Path) -> None:
    image = _image(tmp_path)
    run(["debugfs", "-w", "-R", "clri <2>", str(image)])  # wipe the root inode
    checked = e2fsck.check(image)
    assert not checked.clean and checked.status is not None and checked.status.errors_found
    with pytest.raises(CommandError) as caught:
        e2fsck.ensure_clean(image)
    message = str(caught.value)
    assert message.startswith(f"e2fsck -fn {image} failed with exit status {checked.status.code}")
    assert caught.value.returncode == checked.status.code


def test_a_check_past_its_time_limit_is_unfinished_not_a_signal() -> None:
    unfinished = e2fsck.Check("img", None, ("Restarting e2fsck from the beginning...",), timeout=2)
    assert not unfinished.finished and not unfinished.clean
    error = unfinished.error()
    assert "e2fsck -fn img timed out after 2 s" in str(error) and "SIG" not in str(error)
