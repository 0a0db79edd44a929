"""Keep a mounted image's data moving to the disk while the mount build writes it.

The mount build's files go into the loop-mounted filesystem's page cache, the loop
device copies them into the image file's, and nothing wrote either out before the
umount and e2fsck, whose closing fsync (even under ``-n``) then waited for the whole
image. ``writing_back`` pushes both layers down every ``interval`` seconds while the
extraction runs: ``syncfs`` of the mount hands its dirty data to the loop device, and
``sync_file_range`` starts the image file's writeback without waiting for it. The
disk then works beside the extraction instead of after it; on a 145 MB Debian tree
(2 cores) the extraction went 0.57 -> 0.45 s and the e2fsck after the umount
0.11 -> 0.015 s.

``flushing`` is the last push: one ``syncfs`` while the service check reads the mount,
so the umount after it has little left to do.

Nothing here makes the image durable: the build still promises a complete and
consistent image, not one on disk (see ``nexlab.builder.mount``'s ``nobarrier``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator

from nexlab.builder.mount import Mount

#: Seconds between two pushes (0.05-0.25 s measured the same; shorter only adds syscalls).
INTERVAL = 0.1
_SYNC_FILE_RANGE_WRITE = 2


@contextlib.contextmanager
def writing_back(mount: Mount, interval: float = INTERVAL) -> Iterator[None]:
    """While the block writes into ``mount``, a thread pushes its data toward the disk every
    ``interval`` seconds."""
    with _pushing(mount, interval):
        yield


@contextlib.contextmanager
def flushing(mount: Mount) -> Iterator[None]:
    """While the block runs (it may read the mount, not write it), a thread writes the
    filesystem's dirty data out (``syncfs``) once, so the umount after it has little left to do."""
    with _pushing(mount, None):
        yield


@contextlib.contextmanager
def _pushing(mount: Mount, interval: float | None) -> Iterator[None]:
    """The thread of ``writing_back`` (``interval``) and ``flushing`` (None: one ``syncfs``, at once).

    It is stopped and joined before the block's exit goes on, also on an error or Ctrl-C,
    and only then is its descriptor of the mount closed: it would make the umount fail as busy.
    """
    with contextlib.ExitStack() as descriptors:
        mounted = os.open(mount.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        descriptors.callback(os.close, mounted)
        backing = None
        if interval is not None:
            backing = os.open(mount.image, os.O_RDONLY | os.O_CLOEXEC)
            descriptors.callback(os.close, backing)
        stop = threading.Event()
        thread = threading.Thread(
            target=_push, args=(mounted, backing, stop, interval), name="nexlab-writeback", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _push(mounted: int, backing: int | None, stop: threading.Event, interval: float | None) -> None:
    # ctypes lets the GIL go for each call. Failures are left to the umount, which writes
    # whatever is still dirty and fails loudly if it cannot.
    libc = ctypes.CDLL(None, use_errno=True)
    if interval is None or backing is None:
        libc.syncfs(mounted)
        return
    libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    while not stop.wait(interval):
        libc.syncfs(mounted)
        libc.sync_file_range(backing, 0, 0, _SYNC_FILE_RANGE_WRITE)
