"""The reproducible build: no mount, no loop device, bit-identical images.

A kernel mount writes random inode generations, nanosecond times and journal
state, and a parallel writer places files differently each run
(``notes/reproducible-ext4.md`` §2). So this path never mounts anything:

1. the same setup script as the mount path runs in a container of the base
   image (on any engine: inputs in through its archive API, the tree out through
   its ``export``), with ``SOURCE_DATE_EPOCH`` set (bookworm's shadow tools honour it)
   and a placeholder where the agent goes,
   and its exported filesystem is extracted into a host **staging directory**
   exactly as the mount path extracts it; a user who is not root keeps the
   owners, modes and xattrs aside (``rootless``) for step 4;
2. the staging tree is scrubbed and every mtime clamped (``normalize``);
3. ``mkfs.ext4 -d`` copies it into a fresh sparse file, with ``LC_ALL=C``, the
   pinned config and layout, ``E2FSPROGS_FAKE_TIME``, and a UUID and hash seed
   derived from the inputs;
4. e2fsprogs 1.47.0 copies ctime and atime verbatim from the staging tree, so
   debugfs sets both to the epoch on every inode in use;
5. ``e2fsck -fn`` must find the result clean; this filesystem, which does not
   depend on the agent (the UUID and hash seed come from the other inputs), is what
   the build cache keeps (``cached``, ``nexlab.cache``);
6. the agent replaces the placeholder (``agent``: debugfs), ``e2fsck -fn`` again, and
   the service check runs on the result (``facts``): a build from the cache runs
   this step only, on the same bytes.

The default epoch is the base image's creation time: it changes exactly when
the base does, is the same on every machine that has that image, and is never
in the future.

The package, one job a module: ``build`` (the steps in order; a build from the
cache), ``clean`` (a build from scratch), ``results`` (what
each step reports), ``epoch`` (which time the image carries), ``staging`` (where
the tree goes: a capped tmpfs, /dev/shm's RAM, or disk), ``dumpe2fs`` (which
inodes are in use), ``debugfs`` (one scripted write session), ``times``
(step 4), ``agent`` (step 6), ``cached`` (the cache's key) and ``overlay`` (a
build from an entry: its sha256 beside the copy). The inputs and their digest are the ``BuildManifest``
(``nexlab.builder.manifest``).
"""

from nexlab.builder.reproducible.build import build_reproducible
from nexlab.builder.reproducible.staging import staging_directory

__all__ = ["build_reproducible", "staging_directory"]
