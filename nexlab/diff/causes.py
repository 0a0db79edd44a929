"""Known causes of differences between two builds, each with its fix.

The catalogue comes from measured rebuilds (debootstrap and apt trees built twice)
and from what mkosi, mmdebstrap and reprotest handle. Path rules are tried in
order, the first match wins; a change of the mtime alone is always the generic
"timestamps" cause, whatever the path.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from nexlab.diff.model import Cause
from nexlab.slim.categories import CATEGORIES as SLIM_CATEGORIES
from nexlab.slim.slim import DPKG_FILTERS, RECORD

_REPRO = "nexlab build --reproducible"
#: The cause of a path one side lacks because it was slimmed: "slimmed-docs" and so on.
SLIMMED = "slimmed-"

CAUSES: dict[str, Cause] = {
    c.id: c
    for c in (
        Cause(
            "architecture",
            "the images are for different CPUs: every binary and library is another build of the same program",
            "compare builds made for the same --arch",
        ),
        Cause(
            "timestamps",
            "only the modification time differs: files written during the build carry the build's clock",
            f"clamp mtimes to SOURCE_DATE_EPOCH ({_REPRO} does)",
        ),
        Cause(
            "shadow-lastchg",
            "/etc/shadow field 3 is the day of the last password change, i.e. the day of the build",
            f"set SOURCE_DATE_EPOCH in the build container (shadow honours it) or pin the field ({_REPRO} does)",
        ),
        Cause(
            "package-logs",
            "apk/dpkg/apt/alternatives logs record when each package was installed",
            f"delete the logs from the image ({_REPRO} does)",
        ),
        Cause(
            "package-caches",
            "package manager caches and indexes (apt pkgcache, lists, apk cache, *-old backups) "
            "depend on when they were written and on the mirror's state",
            f"delete them, or install with apk --no-cache / apt-get clean ({_REPRO} does)",
        ),
        Cause(
            "ldconfig-aux-cache",
            "ldconfig's aux-cache stores inode numbers and times of the libraries it scanned",
            f"delete /var/cache/ldconfig/aux-cache; ldconfig rebuilds it ({_REPRO} does)",
        ),
        Cause(
            "pyc",
            "compiled Python (.pyc) records its source's mtime, so recompiling at another time differs",
            "clamp mtimes before compiling, or compile with SOURCE_DATE_EPOCH set (checked-hash .pyc)",
        ),
        Cause(
            "ssh-host-keys",
            "SSH host keys are generated at install time, randomly",
            f"delete them from the image and generate them at first boot ({_REPRO} does)",
        ),
        Cause(
            "machine-id",
            "machine-id is random per installation",
            f"ship it empty or as 'uninitialized' so the guest makes its own ({_REPRO} does)",
        ),
        Cause(
            "random-seed",
            "random seed files hold entropy saved by the build machine",
            f"delete them ({_REPRO} does)",
        ),
        Cause(
            "dockerenv",
            "/.dockerenv is Docker's marker in every container",
            "do not copy it into the image (nexlab's setup removes it)",
        ),
        Cause(
            "docker-network-files",
            "Docker bind-mounts its own /etc/hostname, /etc/hosts and /etc/resolv.conf into containers",
            "write them explicitly in the image (nexlab's setup does)",
        ),
        Cause(
            "fs-uuid",
            "mkfs.ext4 picks a random filesystem UUID (and metadata checksum seed)",
            f"pass -U with a UUID derived from the inputs ({_REPRO} does)",
        ),
        Cause(
            "fs-hash-seed",
            "mkfs.ext4 picks a random directory hash seed",
            f"pass -E hash_seed= with a value derived from the inputs ({_REPRO} does)",
        ),
        Cause(
            "fs-times",
            "the superblock records when the filesystem was made, written, checked and mounted",
            f"set E2FSPROGS_FAKE_TIME for mkfs/debugfs and never mount read-write ({_REPRO} does)",
        ),
        Cause(
            "fs-mounted",
            "the image was mounted read-write: the kernel counts mounts, records the path, writes "
            "the journal, random inode generations and nanosecond times",
            f"populate with mkfs.ext4 -d instead of through a mount ({_REPRO} does)",
        ),
        Cause(
            "fs-layout",
            "block size, inode size or features differ: mke2fs picks them from the image size and "
            "the host's /etc/mke2fs.conf",
            "pin -b -I -i -O and MKE2FS_CONFIG (nexlab's mkfs does)",
        ),
        Cause(
            "fs-size",
            "the images have different sizes",
            "build both with the same --size",
        ),
        Cause(
            "fs-usage",
            "the images hold different content, so different numbers of blocks and inodes are free",
            "the path changes listed say which content differs",
        ),
        Cause(
            "hidden-metadata",
            "the content is identical but the bytes are not: inode ctime/atime/crtime, generations, "
            "allocation order or the journal differ below what a file listing shows",
            f"{_REPRO} pins all of them",
        ),
    )
}
CAUSES.update(
    {
        f"{SLIMMED}{c.name}": Cause(
            f"{SLIMMED}{c.name}",
            f"one image was built with --slim {c.name}, which removes {c.description}",
            f"build both with the same --slim, or neither (nexlab build --slim {c.name})",
        )
        for c in SLIM_CATEGORIES.values()
    }
)
CAUSES["slim-record"] = Cause(
    "slim-record",
    f"a slimmed image records what was slimmed ({RECORD}) and tells dpkg to leave it out of later "
    f"installs ({DPKG_FILTERS})",
    "build both with the same --slim, or neither",
)


@dataclass(frozen=True)
class _Rule:
    patterns: tuple[str, ...]
    cause: str


#: Path rules in order: fnmatch patterns on the absolute path.
PATH_RULES = (
    _Rule(("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-"), "shadow-lastchg"),
    _Rule(
        (
            "/var/log/dpkg.log",
            "/var/log/apt/*",
            "/var/log/alternatives.log",
            "/var/log/bootstrap.log",
            "/var/log/apk.log",
        ),
        "package-logs",
    ),
    _Rule(
        (
            "/var/cache/apt/*",
            "/var/lib/apt/lists/*",
            "/var/cache/apk/*",
            "/var/cache/debconf/*-old",
            "/var/lib/dpkg/*-old",
            "/etc/*-",
        ),
        "package-caches",
    ),
    _Rule(("/var/cache/ldconfig/aux-cache",), "ldconfig-aux-cache"),
    _Rule(("*.pyc",), "pyc"),
    _Rule(("/etc/ssh/ssh_host_*",), "ssh-host-keys"),
    _Rule(("/etc/machine-id", "/var/lib/dbus/machine-id"), "machine-id"),
    _Rule(("/var/lib/systemd/random-seed", "/var/lib/urandom/random-seed", "/var/lib/random-seed"), "random-seed"),
    _Rule(("/.dockerenv",), "dockerenv"),
    _Rule(("/etc/hostname", "/etc/hosts", "/etc/resolv.conf"), "docker-network-files"),
)

#: Superblock fields -> cause.
FILESYSTEM_CAUSES = {
    "uuid": "fs-uuid",
    "hash_seed": "fs-hash-seed",
    "created": "fs-times",
    "last_write": "fs-times",
    "last_check": "fs-times",
    "last_mount": "fs-mounted",
    "mount_count": "fs-mounted",
    "last_mounted_path": "fs-mounted",
    "needs_recovery": "fs-mounted",
    "state": "fs-mounted",
    "block_size": "fs-layout",
    "inode_size": "fs-layout",
    "inodes_count": "fs-layout",
    "features": "fs-layout",
    "groups": "fs-layout",
    "journal_bytes": "fs-layout",
    "free_blocks": "fs-usage",
    "free_inodes": "fs-usage",
    "size_bytes": "fs-size",
    "image_bytes": "fs-size",
    "blocks_count": "fs-size",
}


#: What slimming writes into the image, and the directories it may have to make for it.
SLIM_WRITES = (RECORD, DPKG_FILTERS, RECORD.rpartition("/")[0])


def cause_for_path(path: str, fields: tuple[str, ...], *, slimmed: bool = False) -> str | None:
    """The known cause of a change at ``path`` whose differing fields are ``fields``.

    ``slimmed``: one of the images carries slim's record, so a path only one side
    has (``fields`` empty) is explained by the slim category that covers it, when
    no more specific rule does.
    """
    if fields == ("mtime",):
        return "timestamps"
    for rule in PATH_RULES:
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in rule.patterns):
            return rule.cause
    if slimmed and not fields:
        if path in SLIM_WRITES:
            return "slim-record"
        for category in SLIM_CATEGORIES.values():
            if category.covers(path):
                return SLIMMED + category.name
    return None


def cause_for_field(name: str) -> str | None:
    return FILESYSTEM_CAUSES.get(name)
