"""The reproducible build's staging for a normal user (no root, only access to Docker).

As root, the setup container writes the tree straight into a host directory,
owners and all. A normal user could neither read that tree back (``/etc/shadow``
is 0640 root) nor delete it. So here the container writes into a Docker
**volume**; a second, never-started container of the base image hands the
volume's content over as a tar stream (the engine's archive API); the tree is
extracted into the user's staging directory with the owners and modes recorded
aside; and after ``mkfs.ext4 -d`` debugfs puts those owners, modes and security
xattrs on the inodes. The volume and both containers are removed on any exit.

Extraction refuses absolute names, ``..`` and any path through a symlink (so
nothing lands outside the staging directory), and device nodes, which only root
may create.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from nexlab.build import owned
from nexlab.errors import DockerError, InputError

if TYPE_CHECKING:
    import docker
    from docker.models.images import Image

_MOUNT = "/my-rootfs"
_TYPE_BITS = {
    "file": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "fifo": stat.S_IFIFO,
    "socket": stat.S_IFSOCK,
}


@dataclass(frozen=True)
class Owner:
    """What a normal user cannot keep on the host: owner, full permission bits, security xattrs."""

    uid: int
    gid: int
    #: Permission bits including setuid/setgid/sticky (no file type).
    mode: int
    xattrs: tuple[tuple[str, bytes], ...] = field(default=())


@contextlib.contextmanager
def staging_volume(client: docker.DockerClient) -> Iterator[str]:
    """A fresh, labelled Docker volume for the setup container's output."""
    import docker.errors

    name = f"nexlab-staging-{uuid.uuid4().hex[:16]}"
    try:
        client.volumes.create(name=name, labels=owned.labels("staging"))
    except docker.errors.DockerException as exc:
        raise DockerError(f"cannot create a staging volume: {exc}") from None
    try:
        yield name
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            client.volumes.get(name).remove(force=True)


def export_volume(client: docker.DockerClient, image: Image, volume: str, staging: Path) -> dict[str, Owner]:
    """Copy the volume's tree into ``staging`` (owned by us); returns path -> ``Owner``."""
    import docker.errors

    try:
        container = client.containers.create(
            image.id,
            entrypoint=["/bin/true"],
            volumes={volume: {"bind": _MOUNT, "mode": "ro"}},
            network_mode="none",
            labels=owned.labels("export"),
        )
    except docker.errors.DockerException as exc:
        raise DockerError(f"cannot create the export container: {exc}") from None
    # The whole stream is saved before anything is extracted: a failure half-way through
    # a live stream left the engine waiting on it (and the container unremovable) for 30 s.
    with tempfile.TemporaryFile(dir=staging.parent) as saved:
        try:
            chunks, _ = container.get_archive(_MOUNT)
            for chunk in chunks:
                saved.write(chunk)
        except docker.errors.DockerException as exc:
            raise DockerError(f"cannot read the staged tree from Docker: {exc}") from None
        finally:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
        saved.seek(0)
        return extract_tree(saved, staging)


def extract_tree(fileobj: BinaryIO, staging: Path) -> dict[str, Owner]:
    """Extract a tar of ``my-rootfs/...`` into ``staging``; returns what ownership would have kept.

    Everything is made readable and writable by us (debugfs restores the real
    modes), and directory times are set last, deepest first, as a copy by root
    would have left them.
    """
    owners: dict[str, Owner] = {}
    directory_times: list[tuple[str, int]] = []
    prefix = _MOUNT.strip("/")
    with tarfile.open(fileobj=fileobj, mode="r|") as archive:
        for member in archive:
            relative = _relative(member.name, prefix)
            if relative is None:
                raise InputError(f"unexpected path {member.name!r} in the staged tree")
            xattrs = tuple(
                sorted(
                    (key.removeprefix("SCHILY.xattr."), value.encode("utf-8", "surrogateescape"))
                    for key, value in member.pax_headers.items()
                    if key.startswith("SCHILY.xattr.")
                )
            )
            if not relative:
                continue  # the root keeps what mkfs gives it (root_owner=0:0, the staging dir's 0755)
            owners["/" + relative] = Owner(member.uid, member.gid, member.mode & 0o7777, xattrs)
            if member.ischr() or member.isblk():
                raise InputError(
                    f"/{relative} is a device node, which only root can create",
                    hint="run the reproducible build as root",
                )
            member.name = relative
            if member.islnk():
                target = _relative(member.linkname, prefix)
                if not target:
                    raise InputError(f"hard link /{relative} points outside the tree")
                member.linkname = target
            _check_inside(staging, relative)
            if member.islnk():
                _check_inside(staging, member.linkname)
            # Readable and writable by us whatever the real mode (no setuid bits on the host):
            # mkfs.ext4 must read it, scrub may rewrite it, debugfs sets the real mode afterwards.
            member.mode = (member.mode & 0o755) | (0o700 if member.isdir() else 0o600)
            # A hard link's header must not re-stamp the inode its first name already set up.
            archive.extract(member, staging, set_attrs=not (member.isdir() or member.islnk()))
            if member.isdir():
                directory_times.append((relative, int(member.mtime)))
            elif member.issym():
                # tarfile leaves a link's own time alone; a copy by root (cp -a) keeps it.
                os.utime(staging / relative, (int(member.mtime), int(member.mtime)), follow_symlinks=False)
    for relative, mtime in sorted(directory_times, key=lambda item: -item[0].count("/")):
        path = staging / relative
        os.chmod(path, 0o755)
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return owners


def _check_inside(staging: Path, relative: str) -> None:
    """Refuse a name that is absolute, climbs with "..", or passes through a symlink already
    extracted (which could point anywhere on the host)."""
    parts = relative.split("/")
    if relative.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise InputError(f"refusing the unsafe path {relative!r} in the staged tree")
    current = staging
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink() or not current.is_dir():
            raise InputError(f"refusing /{relative}: /{current.relative_to(staging)} is not a real directory")


def _relative(name: str, prefix: str) -> str | None:
    name = name.removeprefix("./").rstrip("/")
    if name == prefix:
        return ""
    if name.startswith(prefix + "/"):
        return name[len(prefix) + 1 :]
    return None


def owner_commands(image: Path, owners: dict[str, Owner], scratch: Path) -> tuple[list[str], int]:
    """debugfs commands that give every inode of ``image`` the owner, mode and xattrs recorded
    for its path (xattr values go to files in ``scratch``); and how many inodes they touch.

    They run in the same debugfs session as the time pinning: a separate session would
    add its own writes to the superblock's lifetime-writes counter, and the image would
    differ from a root build of the same inputs in those bytes.
    """
    from nexlab.image import open_image

    lines: list[str] = []
    done: set[int] = set()
    with open_image(image) as fs:
        for entry in fs.walk():
            owner = owners.get(entry.path)
            if owner is None or entry.inode in done:
                continue
            done.add(entry.inode)
            inode = f"<{entry.inode}>"
            lines.append(f"sif {inode} uid {owner.uid}")
            lines.append(f"sif {inode} gid {owner.gid}")
            lines.append(f"sif {inode} mode 0{_TYPE_BITS[entry.type] | owner.mode:o}")
            for index, (name, value) in enumerate(owner.xattrs):
                value_file = scratch / f"xattr-{entry.inode}-{index}"
                value_file.write_bytes(value)
                lines.append(f"ea_set -f {value_file} {inode} {name}")
    return lines, len(done)
