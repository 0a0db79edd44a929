"""Step 4 of the reproducible build: every inode's ctime and atime := the epoch.

e2fsprogs 1.47.0's ``mkfs.ext4 -d`` copies ctime and atime verbatim from the
staging tree, so they are pinned afterwards, with debugfs; a normal user's build
also gets its owners, modes and xattrs back in the same session.
"""

from __future__ import annotations

import time
from pathlib import Path

from nexlab import e2fsck
from nexlab.builder.reproducible import debugfs
from nexlab.builder.reproducible.dumpe2fs import in_use_inodes
from nexlab.builder.reproducible.results import TimesResult
from nexlab.builder.rootless import Owner, owner_commands


def pin_inode_times(image: Path, epoch: int, *, owners: dict[str, Owner] | None = None) -> TimesResult:
    """ctime and atime of every inode in use := ``epoch``; then ``e2fsck -fn`` must be clean.

    ``owners`` (the build of a user who is not root) also sets owners, modes and
    xattrs, in the same debugfs session.
    """
    start = time.monotonic()
    inodes = in_use_inodes(image)
    fake_time = {"E2FSPROGS_FAKE_TIME": str(epoch)}
    restored = 0
    with debugfs.session(image) as session:
        if owners is not None:
            lines, restored = owner_commands(image, owners, session.scratch)
            session.add(*lines)
        session.add(*(f"sif <{n}> ctime @{epoch}\nsif <{n}> atime @{epoch}" for n in inodes))
        session.run(env=fake_time)
    # The superblock counts every byte ever written to the filesystem, so a build that
    # took more writes (a normal user's, with owners to restore) would differ there.
    # A last, tiny session resets it; what remains is that session's own, fixed writes.
    debugfs.set_superblock(image, "kbytes_written", "0", env=fake_time)
    e2fsck.ensure_clean(image, env=fake_time)
    return TimesResult(seconds=time.monotonic() - start, inodes=len(inodes), fsck_clean=True, owners=restored)
