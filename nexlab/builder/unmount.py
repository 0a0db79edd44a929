"""Step 5: release the mount and check the filesystem with ``e2fsck -fn``."""

from __future__ import annotations

import time
from pathlib import Path

from nexlab import e2fsck
from nexlab.builder.mount import Mount
from nexlab.builder.results import UnmountResult


def fsck(image: Path) -> tuple[bool, tuple[str, ...]]:
    """Read-only full check: (clean, report lines). Never changes the image."""
    checked = e2fsck.check(image)
    return checked.clean, checked.lines


def unmount(mount: Mount) -> UnmountResult:
    """Unmount, detach the loop device, then ``e2fsck -fn`` the image and report."""
    start = time.monotonic()
    mount.release()
    clean, report = fsck(mount.image)
    return UnmountResult(seconds=time.monotonic() - start, image=mount.image, fsck_clean=clean, fsck_report=report)
