"""Which init a base image boots with, found without running anything in it.

The agent's service has to match PID 1: an OpenRC script under systemd, or a
systemd unit under busybox init, is a file nothing ever runs. So the base image
is read before anything is built: a container is *created* (never started) and
``/sbin/init`` and OpenRC's tools are looked up through the engine's archive
API, which resolves symlinks inside the container's root, not the host's.

The classification itself (``nexlab.inits.classify``) only sees names and a few bytes, so
the audit uses it on an image's records too.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import stat as stat_module
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from nexlab.builder import engine
from nexlab.errors import BaseImageError, DockerError, InputError

# The classification is shared with the audit, which must not depend on the builder.
from nexlab.inits import INIT_PATHS, OPENRC_RUN_PATHS, SERVICE_PATHS, InitKind, classify

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container
    from docker.models.images import Image


#: What ``--init`` accepts: ``auto`` detects, the others force (sysvinit without
#: OpenRC gets the same inittab service as busybox, in sysvinit's syntax).
INIT_CHOICES = ("auto", *(kind.value for kind in InitKind))

#: The default service asset for each init (in nexlab.builder.assets).
SERVICE_ASSETS = {
    InitKind.OPENRC: "agent.openrc",
    InitKind.SYSTEMD: "agent.service",
    InitKind.BUSYBOX: "agent-service.sh",
    InitKind.SYSVINIT: "agent-service.sh",
}

#: What a refused base was searched for, in the error.
LOOKED_FOR = "/sbin/init or /usr/sbin/init (systemd, busybox or sysvinit) and /sbin/openrc-run"
#: Enough of a regular /sbin/init to tell busybox, systemd and sysvinit apart.
_SNIFF_LIMIT = 16 << 20
#: Symlink hops allowed while resolving a path inside the image (the kernel's limit).
_MAX_HOPS = 40


@dataclass(frozen=True)
class InitSystem:
    """The init a base boots with: what PID 1 is, and whether OpenRC can run services."""

    kind: InitKind
    #: /sbin/init as found, symlinks resolved inside the image ("" when forced without a look).
    pid1: str
    openrc: bool
    #: One line for progress and errors: what was found where.
    evidence: str

    @property
    def service_path(self) -> str:
        return SERVICE_PATHS[self.kind]


def parse_init(value: str) -> InitKind | None:
    """``--init``'s value: None for auto, else the kind (``InputError`` when unknown)."""
    if value == "auto":
        return None
    try:
        return InitKind(value)
    except ValueError:
        raise InputError(f"unknown init {value!r}", hint=f"use one of {', '.join(INIT_CHOICES)}") from None


def detect(client: docker.DockerClient, image: Image, reference: str) -> InitSystem:
    """The init of ``image``; ``BaseImageError`` (one line) when it has none nexlab knows."""
    import docker.errors

    try:
        container = client.containers.create(
            image.id,
            command=["/nonexistent"],
            network_mode="none",
            labels={"org.nexlab.role": "inspect"},
            platform=engine.platform_of(image),
        )
    except docker.errors.DockerException as exc:
        raise DockerError(f"cannot inspect {reference}'s init: {exc}") from None
    try:
        return detect_in(container, reference)
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)


def detect_in(container: Container, reference: str, *, root: Path | None = None) -> InitSystem:
    """The init of a created, never started, container's image (the build's own setup container).

    ``root`` is that container's filesystem mounted read-only on this host
    (``nexlab.builder.layers.image_root``): the same lookups without one engine
    request per path (each mounts the container's layers again, ~0.15 s).
    """
    lookup: _Lookup = _HostLookup(root) if root is not None else _EngineLookup(container)
    pid1, head = _find_init(lookup)
    openrc = any(lookup.stat(path) is not None for path in OPENRC_RUN_PATHS)
    kind = classify(pid1, head, openrc=openrc)
    if kind is None:
        found = f"/sbin/init is {pid1}, not one nexlab knows" if pid1 else "none of them is there"
        raise BaseImageError(
            f"cannot find the init of base image {reference}: looked for {LOOKED_FOR}; {found}",
            hint="use a base with OpenRC, systemd or busybox init, or say which with --init",
        )
    evidence = f"{kind.value} ({'PID 1 ' + pid1 if pid1 else 'no /sbin/init'}{', OpenRC' if openrc else ''})"
    return InitSystem(kind=kind, pid1=pid1 or "", openrc=openrc, evidence=evidence)


def choose(detected: InitSystem, requested: InitKind | None, reference: str, network: str) -> InitSystem:
    """The init to build for: the detected one, or ``--init``'s if the base can honour it."""
    if requested is None or requested == detected.kind:
        return detected
    if requested == InitKind.OPENRC:
        if detected.kind == InitKind.SYSTEMD:
            raise InputError(f"--init openrc, but systemd is PID 1 in {reference}: OpenRC would never run")
        if network == "none":
            raise InputError(
                f"--init openrc, but {reference} has no OpenRC and the setup has no network to install it",
                hint="use --network bridge, or --init auto",
            )
    elif requested == InitKind.SYSTEMD:
        raise InputError(f"--init systemd, but PID 1 in {reference} is {detected.pid1 or 'missing'}, not systemd")
    elif detected.kind == InitKind.SYSTEMD:
        raise InputError(f"--init {requested.value}, but systemd is PID 1 in {reference}: inittab is never read")
    evidence = f"{requested.value} (--init; found {detected.evidence})"
    return InitSystem(requested, detected.pid1, detected.openrc, evidence)


class _Lookup(Protocol):
    def stat(self, path: str) -> dict[str, object] | None:
        """The archive API's stat of ``path``'s last component (``linkTarget`` resolved), or None."""

    def head(self, path: str) -> bytes:
        """The first bytes of the regular file ``path`` (b"" for anything else)."""


def _find_init(lookup: _Lookup) -> tuple[str | None, bytes]:
    for path in INIT_PATHS:
        stat = lookup.stat(path)
        if stat is None or stat.get("dangling"):
            continue
        # The archive API leaves the last component alone; linkTarget is its
        # target resolved inside the container.
        target = str(stat.get("linkTarget") or path)
        resolved = lookup.stat(target) if target != path else stat
        if resolved is None:
            continue  # a dangling link: the kernel cannot run it either
        # The name settles systemd and busybox; only a regular /sbin/init is read.
        conclusive = posixpath.basename(target) in ("systemd", "busybox")
        return target, b"" if conclusive else lookup.head(target)
    return None, b""


class _EngineLookup:
    """Through the engine's archive API, which resolves links inside the container."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def stat(self, path: str) -> dict[str, object] | None:
        return _stat(self.container, path)

    def head(self, path: str) -> bytes:
        return _head(self.container, path)


class _HostLookup:
    """The same answers from the image's tree mounted read-only on this host.

    Every component is looked up with ``lstat`` below ``root`` and links are
    resolved here, inside the image (absolute targets from its root, ``..``
    stopping there), so the kernel never follows one of the image's links to
    the host; the file read is opened with ``O_NOFOLLOW``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _resolve(self, path: str, *, follow_last: bool) -> str | None:
        parts = [p for p in path.split("/") if p and p != "."]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            here = os.path.join(self.root, *done, part)
            try:
                info = os.lstat(here)
            except (FileNotFoundError, NotADirectoryError):
                return None
            if stat_module.S_ISLNK(info.st_mode) and (parts or follow_last):
                hops += 1
                if hops > _MAX_HOPS:
                    return None
                target = os.readlink(here)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            if parts and not stat_module.S_ISDIR(info.st_mode):
                return None
            done.append(part)
        return "/" + "/".join(done)

    def stat(self, path: str) -> dict[str, object] | None:
        last = self._resolve(path, follow_last=False)
        if last is None:
            return None
        if not stat_module.S_ISLNK(os.lstat(os.path.join(self.root, last.lstrip("/"))).st_mode):
            return {"name": posixpath.basename(path), "linkTarget": ""}
        target = self._resolve(path, follow_last=True)
        # The engine names a dangling link's target, which then is not found: say so directly.
        return {"name": posixpath.basename(path), "linkTarget": target or "", "dangling": target is None}

    def head(self, path: str) -> bytes:
        real = self._resolve(path, follow_last=True)
        if real is None:
            return b""
        try:
            fd = os.open(os.path.join(self.root, real.lstrip("/")), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return b""
        try:
            if not stat_module.S_ISREG(os.fstat(fd).st_mode):
                return b""
            data = bytearray()
            while len(data) < _SNIFF_LIMIT and (chunk := os.read(fd, min(2**20, _SNIFF_LIMIT - len(data)))):
                data += chunk
            return bytes(data)
        finally:
            os.close(fd)


def _stat(container: Container, path: str) -> dict[str, object] | None:
    import docker.errors

    try:
        stream, stat = container.get_archive(path)
    except docker.errors.NotFound:
        return None
    except docker.errors.DockerException as exc:
        raise DockerError(f"cannot read {path} in the base image: {exc}") from None
    with contextlib.suppress(Exception):
        stream.close()
    return dict(stat)


def _head(container: Container, path: str) -> bytes:
    """The first bytes of a regular file in the container (b"" for anything else)."""
    stream, _ = container.get_archive(path)
    data = bytearray()
    for chunk in stream:
        data += chunk
        if len(data) > _SNIFF_LIMIT + 1024:
            break
    import tarfile  # only when the base's files are read through the engine

    with contextlib.suppress(tarfile.TarError), tarfile.open(fileobj=io.BytesIO(bytes(data)), mode="r|") as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            return handle.read(_SNIFF_LIMIT) if handle else b""
    return b""
