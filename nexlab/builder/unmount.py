"""Step 5: release the mount and check the filesystem with ``e2fsck -fn``."""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def flushing(mount: Mount) -> Iterator[None]:
    """While the block runs (it may read the mount, not write it), a thread writes the
    filesystem's dirty data out (``syncfs``), so the umount after it has little left to do.

    The thread is joined before the block's exit goes on, also on an error or Ctrl-C: its
    descriptor of the mount would make the umount fail as busy.
    """
    fd = os.open(mount.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    thread = threading.Thread(target=_syncfs, args=(fd,), name="nexlab-syncfs", daemon=True)
    try:
        thread.start()
        yield
    finally:
        if thread.is_alive():
            thread.join()
        os.close(fd)


def _syncfs(fd: int) -> None:
    # ctypes lets the GIL go for the call. A failed write-out is umount's to report: it
    # writes whatever is still dirty and fails loudly if it cannot.
    ctypes.CDLL(None, use_errno=True).syncfs(fd)
