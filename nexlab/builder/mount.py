"""Step 3: attach the image to a loop device and mount it.

``Mount`` owns both resources and releases them in reverse order however the
caller leaves: ``with mount(image) as m: ...``, an explicit ``unmount(m)``, an
exception or Ctrl-C. Release is idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType

from nexlab.display import Displayable
from nexlab.errors import CommandError, InputError, PrivilegeError
from nexlab.host import owned, signals
from nexlab.run import run

log = logging.getLogger("nexlab.mount")

#: Inodes 1-10 are reserved by ext4 and counted as used; 2 (the root) is a real directory.
_EXT4_RESERVED_INODES = 9


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise PrivilegeError(
            f"{action} needs root (loop devices and mount)",
            hint="run as root, or use --reproducible, which needs no mount",
        )


class Mount(Displayable):
    """A loop-mounted image: ``loop_device`` and ``path`` (the mount point)."""

    step = "mount"

    def __init__(
        self,
        image: Path,
        loop_device: str,
        path: Path,
        seconds: float,
        owns_dir: bool,
        record: contextlib.ExitStack | None = None,
    ) -> None:
        self.image = image
        self._record = record or contextlib.ExitStack()
        self.loop_device = loop_device
        self.path = path
        self.seconds = seconds
        self._owns_dir = owns_dir
        self.mounted = True

    def __enter__(self) -> Mount:
        return self

    def __del__(self) -> None:
        # A signal between ``mount()`` returning and ``with`` calling ``__enter__`` drops the
        # object without ``__exit__``: releasing it here keeps the loop device from leaking.
        if getattr(self, "mounted", False):
            with contextlib.suppress(Exception):
                self.release()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def summary(self) -> str:
        state = "mounted" if self.mounted else "released"
        return f"{self.image} on {self.path} via {self.loop_device}, {state}"

    def usage(self) -> tuple[int, int]:
        """(used, free) bytes as the mounted filesystem reports them."""
        stats = os.statvfs(self.path)
        return (stats.f_blocks - stats.f_bfree) * stats.f_frsize, stats.f_bavail * stats.f_frsize

    def overhead(self) -> int:
        """Bytes the filesystem itself takes (journal, inode tables, bitmaps): never free for files."""
        stats = os.statvfs(self.path)
        return self.image.stat().st_size - stats.f_blocks * stats.f_frsize

    def inodes_used(self) -> int:
        """Files, directories and links in the filesystem (the inodes ext4 reserves excluded)."""
        stats = os.statvfs(self.path)
        return stats.f_files - stats.f_ffree - _EXT4_RESERVED_INODES

    def facts(self) -> list[tuple[str, str]]:
        facts = [("image", str(self.image)), ("loop device", self.loop_device), ("mount point", str(self.path))]
        if self.mounted:
            used, free = self.usage()
            facts.append(("used / free", f"{used // 1024} KiB / {free // 1024} KiB"))
        facts.append(("state", "mounted" if self.mounted else "released"))
        facts.append(("time", f"{self.seconds:.2f} s"))
        return facts

    log_tail: tuple[str, ...] = ()

    def release(self) -> None:
        """Unmount, detach the loop device and remove our mount point. Safe to call twice."""
        if not self.mounted:
            return
        errors: list[Exception] = []
        # A second Ctrl-C must not leave the loop device attached half-way through.
        with signals.deferred():
            try:
                _umount(self.path)
            except CommandError as exc:
                errors.append(exc)
            try:
                run(["losetup", "-d", self.loop_device], uninterruptible=True)
            except CommandError as exc:
                if not _loop_is_free(self.loop_device, self.image):
                    errors.append(exc)
            if self._owns_dir:
                with contextlib.suppress(OSError):
                    self.path.rmdir()
                self._record.close()
            self.mounted = False
        if errors:
            raise errors[0]


def _umount(path: Path) -> None:
    for attempt in range(5):
        try:
            run(["umount", str(path)], uninterruptible=True)
            return
        except CommandError as exc:
            if "not mounted" in exc.stderr:
                return
            if "busy" not in exc.stderr or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def _loop_is_free(device: str, image: Path) -> bool:
    return device not in loops_backed_by(image)


def loops_backed_by(image: Path) -> list[str]:
    """The loop devices whose backing file is ``image``."""
    listing = run(["losetup", "-j", str(image)], check=False).stdout
    return [line.split(":", 1)[0] for line in listing.splitlines() if line.startswith("/dev/")]


def mount(
    image: str | os.PathLike[str], mountpoint: str | os.PathLike[str] | None = None, *, read_only: bool = False
) -> Mount:
    """Loop-mount ``image`` read-write (or ``read_only``) and return the ``Mount``."""
    require_root("mounting an image")
    path = Path(image)
    if not path.is_file():
        raise InputError(f"{path} is not a file")
    start = time.monotonic()
    owns_dir = mountpoint is None
    record = contextlib.ExitStack()
    if mountpoint is None:
        # Inside a directory only root can enter: once mounted, the image's own root (0755)
        # replaces the mount point's mode, and its setuid binaries and device nodes are there.
        target = Path(tempfile.mkdtemp(prefix=f"{owned.tag()}-", dir=owned.mount_root()))
        record.enter_context(owned.recorded("mount", target))
    else:
        target = Path(mountpoint)
        target.mkdir(parents=True, exist_ok=True)
    loop_device = ""
    is_mounted = False
    mounted: Mount | None = None
    try:
        # Attached and mounted with signals held back: an interrupted losetup would
        # attach a device whose name we never learn.
        with signals.deferred():
            loop_device = run(
                ["losetup", "--find", "--show", *(["--read-only"] if read_only else []), str(path)],
                uninterruptible=True,
            ).stdout.strip()
            # nosuid,nodev: the image's setuid binaries and device nodes mean nothing on the host.
            # nobarrier: a loop device turns each cache flush into an fsync of the backing file,
            # so every journal commit (and umount) waited for the image to reach this host's disk;
            # the image is a file that umount, e2fsck -fn and the rename follow, and nexlab never
            # promised it on disk (nothing fsyncs an output), only complete and consistent.
            options = "ro,noload,nosuid,nodev" if read_only else "rw,nosuid,nodev,nobarrier"
            run(["mount", "-t", "ext4", "-o", options, loop_device, str(target)], uninterruptible=True)
            is_mounted = True
            # Built before the signals come back: a Ctrl-C after this line finds an object that
            # releases itself (``__del__``), one before it finds the except clause below.
            mounted = Mount(path, loop_device, target, time.monotonic() - start, owns_dir, record)
    except BaseException:
        with signals.deferred():
            if mounted is not None:  # released here: its __del__ must not detach a reused device
                mounted.mounted = False
            # Also when mount(8) failed: it may have died after the kernel mounted.
            if is_mounted or loop_device:
                with contextlib.suppress(CommandError):
                    _umount(target)
            # A terminal's Ctrl-C also reaches losetup itself, which can die after attaching and
            # before printing the device: then the device is found by its backing file.
            for device in [loop_device] if loop_device else loops_backed_by(path):
                run(["losetup", "-d", device], check=False, uninterruptible=True)
            if owns_dir:
                shutil.rmtree(target, ignore_errors=True)
            record.close()
        raise
    log.debug("mounted %s on %s via %s", path, target, loop_device)
    return mounted
