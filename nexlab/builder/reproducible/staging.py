"""Where the reproducible build's staging tree goes, and its clean-up that nothing interrupts."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nexlab import tempdirs
from nexlab.errors import InputError
from nexlab.host import owned, safefs, signals
from nexlab.run import run


def _memory_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


# The staging tree goes to RAM when it fits: on the build hosts measured, the setup
# container's copy of a 190 MB Debian tree took 7.5 s into a directory on the disk
# (and 5.9 s to delete) but 1.8 s into a tmpfs (0.15 s to delete).
def staging_parent(content_limit: int) -> tuple[Path | None, bool]:
    """Where the staging directory goes, and whether it gets its own tmpfs capped at
    ``content_limit`` bytes.

    ``$NEXLAB_STAGING_DIR`` if set; else, for root with twice the limit in free memory,
    a private tmpfs of exactly the limit (an image with a 1 GiB file then costs at
    most the requested size of RAM before the build says it does not fit); else the
    system's temporary directory, on disk. A normal user cannot cap a tmpfs, and
    /dev/shm would hold whatever the base image has, so they stage on disk.
    """
    configured = os.environ.get("NEXLAB_STAGING_DIR")
    if configured:
        return Path(configured), False
    if os.geteuid() == 0 and _memory_available() >= 2 * content_limit:
        return None, True
    return None, False


@contextlib.contextmanager
def staging_directory(content_limit: int) -> Iterator[Path]:
    """A fresh directory for the tree, inside a private (0700) one.

    It is not under ``tempdirs.base()`` (it may be a tmpfs of its own, or in
    ``$NEXLAB_STAGING_DIR``) but is named like every nexlab temporary, and is not kept by
    ``--debug`` (it can be RAM). The tree's own mode becomes the image root's, so it is
    pinned to 0755 whatever the umask; the private parent keeps other users out meanwhile. Its name carries
    our PID and it is recorded, so a later run removes it if we are killed. The
    clean-up (an iterative walk that never follows a link) cannot be interrupted.
    """
    parent, capped = staging_parent(content_limit)
    if parent is not None and not parent.is_dir():
        raise InputError(f"staging directory {parent} does not exist")
    private = Path(tempfile.mkdtemp(prefix=tempdirs.name("staging") + "-", dir=parent))
    mounted = False
    with owned.recorded("staging", private):
        try:
            if capped:
                options = f"size={content_limit},mode=0700,nosuid,nodev"
                mounted = (
                    run(["mount", "-t", "tmpfs", "-o", options, "nexlab-staging", str(private)], check=False).returncode
                    == 0
                )
            tree = private / "root"
            tree.mkdir()
            os.chmod(tree, 0o755)
            yield tree
        finally:
            with signals.deferred():
                # Lazily if need be: a tmpfs still busy is freed when the last user goes.
                if mounted and run(["umount", str(private)], check=False).returncode != 0:
                    run(["umount", "-l", str(private)], check=False)
                with contextlib.suppress(OSError):
                    safefs.rmtree(private)
