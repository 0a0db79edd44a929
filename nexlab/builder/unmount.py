"""Step 5: release the mount and check the filesystem with ``e2fsck -fn``."""

from __future__ import annotations

import time
from pathlib import Path

from nexlab.builder.mount import Mount
from nexlab.builder.results import UnmountResult
from nexlab.e2fsck import exit_status
from nexlab.run import run


def fsck(image: Path) -> tuple[bool, tuple[str, ...]]:
    """Read-only full check: (clean, report lines). Never changes the image."""
    result = run(["e2fsck", "-fn", str(image)], check=False)
    lines = tuple(line for line in (result.stdout + result.stderr).splitlines() if line.strip())
    return exit_status(result.returncode).clean, lines


def unmount(mount: Mount) -> UnmountResult:
    """Unmount, detach the loop device, then ``e2fsck -fn`` the image and report."""
    start = time.monotonic()
    mount.release()
    clean, report = fsck(mount.image)
    return UnmountResult(seconds=time.monotonic() - start, image=mount.image, fsck_clean=clean, fsck_report=report)
