"""Step 1: an empty, sparse file of exactly the requested size."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from nexlab.builder.results import AllocateResult
from nexlab.errors import InputError
from nexlab.sizes import parse_size

#: nex's default: "enough for a ~20 MB workload binary".
DEFAULT_SIZE = 157286400
#: Smaller than this, mkfs.ext4 cannot lay out a journal and 4 KiB blocks.
MINIMUM_SIZE = 8 * 1024 * 1024


def allocate(
    path: str | os.PathLike[str], size: int | str = DEFAULT_SIZE, *, overwrite: bool = False
) -> AllocateResult:
    """Create ``path`` as a sparse file of exactly ``size`` bytes.

    Refuses to replace an existing file unless ``overwrite`` is true; a replaced
    file is truncated to zero first, because a reused non-zero file leaves stale
    inode-table bytes behind mkfs.
    """
    start = time.monotonic()
    target = Path(path)
    if isinstance(size, str) and size.strip().lower() == "auto":
        raise InputError(
            "size auto is chosen from the content, which allocate cannot see",
            hint="build with build_rootfs(size='auto') or nexlab build --size auto, or give allocate a size",
        )
    num_bytes = parse_size(size)
    if num_bytes < MINIMUM_SIZE:
        raise InputError(f"size {num_bytes} bytes is too small for an ext4 rootfs", hint="use at least 8MiB")
    if not target.parent.is_dir():
        raise InputError(f"directory {target.parent} does not exist")
    # Never through a link: the output directory may be writable by someone else.
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(target, flags, 0o644)
    except FileExistsError:
        raise InputError(f"{target} already exists", hint="pass overwrite=True or choose another path") from None
    except IsADirectoryError:
        raise InputError(f"{target} is a directory") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{target} is a symbolic link", hint="nexlab never writes through a link") from None
        raise
    try:
        os.ftruncate(fd, num_bytes)
        allocated = os.fstat(fd).st_blocks * 512
    finally:
        os.close(fd)
    return AllocateResult(seconds=time.monotonic() - start, path=target, size=num_bytes, allocated=allocated)
