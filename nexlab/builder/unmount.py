"""Step 5: release the mount and check the filesystem with ``e2fsck -fn``."""

from __future__ import annotations

import time
from pathlib import Path

from nexlab import e2fsck
from nexlab.builder.mount import Mount
from nexlab.builder.output import Digest
from nexlab.builder.results import UnmountResult


def fsck(image: Path) -> tuple[bool, tuple[str, ...]]:
    """Read-only full check: (clean, report lines). Never changes the image."""
    checked = e2fsck.check(image)
    return checked.clean, checked.lines


def unmount(mount: Mount) -> UnmountResult:
    """Unmount, detach the loop device, then ``e2fsck -fn`` the image and report."""
    return unmount_digesting(mount, digest=False)[0]


def unmount_digesting(mount: Mount, *, digest: bool) -> tuple[UnmountResult, Digest | None]:
    """``unmount``; with ``digest``, the image's sha256 is computed beside ``e2fsck -fn``
    (both only read it) and handed back running: ``Digest.result()`` waits for it."""
    start = time.monotonic()
    mount.release()
    running = Digest(mount.image) if digest else None
    try:
        clean, report = fsck(mount.image)
    except BaseException:
        if running is not None:
            running.wait()
        raise
    result = UnmountResult(seconds=time.monotonic() - start, image=mount.image, fsck_clean=clean, fsck_report=report)
    return result, running
