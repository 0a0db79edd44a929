"""Building a rootfs: one module per step, ``pipeline`` chains them.

Where things happen: ``allocate.py`` (truncate), ``mkfs.py`` (mkfs.ext4),
``mount.py`` (losetup + mount), ``populate.py`` and ``container.py`` (the Docker
container and setup.sh), ``unmount.py`` (umount + e2fsck), ``base.py`` (offline
base images).
"""
