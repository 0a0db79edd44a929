"""The setup container's filesystem as a tar stream, read from its layers on this host.

``export`` is the engine-agnostic way out, but the engine's stream is slow (for a
200 MiB base it takes longer than everything else in a build). When the engine
runs here, nexlab is root, the storage driver is ``overlay2`` and no user
namespace shifts owners, the exited container's layers are plain directories on
this host: they are mounted read-only as one overlay (the kernel applies
whiteouts and opaque directories exactly as the container saw them) inside
nexlab's private mount root, and GNU tar archives the top-level names the image
keeps. tar never follows a symlink (no ``-h``), so nothing outside the container
is read, and it keeps ``security.capability`` only, as the engine's export does.
libarchive reads tar's stdout directly (``nexlab.run.Streaming``), with the same
filtering, secure flags and counting as ``export``'s stream.

Anything unexpected before the first byte falls back to ``export`` (logged at
debug); ``NEXLAB_EXPORT=engine`` forces the fallback. The reproducible path never
comes here: it must stay engine-agnostic.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.builder.extract import EMPTIED, KEPT
from nexlab.errors import NexlabError
from nexlab.host import owned, safefs, signals
from nexlab.run import Streaming, stream

if TYPE_CHECKING:
    from collections.abc import Iterable

    import docker
    from docker.models.containers import Container

    from nexlab.builder.container import FinishedSetup

log = logging.getLogger("nexlab.layers")

#: ``engine`` makes every build use the engine's export.
ENV = "NEXLAB_EXPORT"
#: mount(2) takes one page of options.
_MAX_OPTIONS = 4000


class Unavailable(Exception):
    """The fast path does not apply here; the message says why (logged, never shown)."""


def layer_dirs(container: Container) -> list[str]:
    """The container's layer directories, top first, or ``Unavailable``."""
    if os.environ.get(ENV) == "engine":
        raise Unavailable(f"{ENV}=engine")
    if os.geteuid() != 0:
        raise Unavailable("not root")
    from nexlab.builder.engine import is_local

    if not is_local(container.client):
        raise Unavailable(f"the engine is not on a local socket ({getattr(container.client.api, 'base_url', '?')})")
    container.reload()
    driver = container.attrs.get("GraphDriver") or {}
    if driver.get("Name") != "overlay2":
        raise Unavailable(f"storage driver {driver.get('Name')!r}")
    security = " ".join(_security_options(container.client))
    if "rootless" in security or "userns" in security:
        # The layers hold shifted owners: only the engine knows the real ones.
        raise Unavailable(f"the engine maps users ({security})")
    data = driver.get("Data") or {}
    upper, lower = data.get("UpperDir"), data.get("LowerDir")
    if not upper:
        raise Unavailable("no UpperDir")
    dirs = [upper, *(lower.split(":") if lower else [])]
    for path in dirs:
        if not os.path.isabs(path) or not os.path.isdir(path):
            raise Unavailable(f"layer {path} is not a directory on this host (an engine elsewhere?)")
    return dirs


#: The engine's security options, per client (``info`` is slow, and asked twice per build).
_SECURITY: dict[int, list[str]] = {}


def _security_options(client: docker.DockerClient) -> list[str]:
    if id(client) not in _SECURITY:
        _SECURITY[id(client)] = list(client.info().get("SecurityOptions") or [])
    return _SECURITY[id(client)]


def mount_options(dirs: list[str]) -> str:
    # A single layer is not an overlay: overlayfs wants two lower layers without an upper.
    lowers = dirs if len(dirs) > 1 else [*dirs, dirs[0]]
    options = "ro,nosuid,nodev,lowerdir=" + ":".join(lowers)
    if len(options) > _MAX_OPTIONS or any(":" in d or "," in d for d in dirs):
        raise Unavailable("the layer paths do not fit in mount options")
    return options


@contextlib.contextmanager
def overlay(dirs: list[str]) -> Iterator[Path]:
    """``dirs`` mounted read-only as one overlay in nexlab's mount root, released on any exit."""
    options = mount_options(dirs)
    with contextlib.ExitStack() as stack:
        target = Path(tempfile.mkdtemp(prefix=f"{owned.tag()}-", dir=owned.mount_root()))
        stack.callback(shutil.rmtree, target, ignore_errors=True)
        stack.enter_context(owned.recorded("mount", target))
        mounted = False
        try:
            # Mounted and recorded as unmounted with signals held back, as nexlab.builder.mount does.
            # mount(2) itself, not mount(8): two programs less to start per overlay.
            with signals.deferred():
                try:
                    _mount(options, target)
                except OSError as exc:
                    raise Unavailable(f"overlay mount failed: {exc}") from None
                mounted = True
            yield target
        finally:
            if mounted:
                with signals.deferred():
                    _umount(target)


_MS_RDONLY, _MS_NOSUID, _MS_NODEV = 0x1, 0x2, 0x4
_MNT_DETACH = 0x2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount(options: str, target: Path) -> None:
    # The flags go as flags; the data is overlayfs' own options only.
    data = options.removeprefix("ro,nosuid,nodev,").encode()
    flags = _MS_RDONLY | _MS_NOSUID | _MS_NODEV
    log.debug("mount -t overlay -o %s %s", options, target)
    if _libc().mount(b"overlay", os.fsencode(target), b"overlay", ctypes.c_ulong(flags), data) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(target))


def _umount(target: Path) -> None:
    libc = _libc()
    busy = libc.umount2(os.fsencode(target), 0) != 0 and os.path.ismount(target)
    # Busy (tar killed a moment ago): detach now, the kernel frees it when idle.
    if busy and libc.umount2(os.fsencode(target), _MNT_DETACH) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(target))


def tar_argv(root: Path) -> list[str]:
    """GNU tar of the kept top-level names that exist under ``root`` (symlinks as symlinks)."""
    names = sorted(name for name in KEPT if os.path.lexists(root / name))
    return [
        "tar",
        "--format=posix",
        "--pax-option=delete=atime,delete=ctime",
        "--xattrs",
        # What the engine's export keeps, so both paths build the same image.
        "--xattrs-include=security.capability",
        "--numeric-owner",
        # What extract drops anyway is not read at all (apt's lists and caches are most of a
        # careless base's /var); extract still filters, this only saves the reading.
        "--anchored",
        *(f"--exclude={emptied}/*" for emptied in EMPTIED),
        "-C",
        str(root),
        "-cf",
        "-",
        *(names or ["--files-from=/dev/null"]),
    ]


def place_inputs(container: Container, files: list[tuple[str, bytes, int, int]]) -> bool:
    """Write ``files`` (``(path, data, mode, mtime)``, all under ``nexlab/``) into the created
    container's own layer, where the container finds them when it starts; False (nothing
    written) when the layers are not this host's to write, or the image has a /nexlab.

    Only a new top-level directory is made: a directory that also exists below would be
    shown with the attributes given here, so everything that goes elsewhere is staged
    in /nexlab and setup.sh moves it (the container's overlay copies up the parents).
    """
    import docker.errors

    try:
        upper, *lower = layer_dirs(container)
    except (Unavailable, docker.errors.DockerException, OSError) as exc:
        log.debug("the setup files go through the engine (%s)", exc)
        return False
    if any(not name.startswith("nexlab/") or name.count("/") != 1 for name, _, _, _ in files):
        raise ValueError("place_inputs writes files directly under nexlab/ only")
    if any(os.path.lexists(os.path.join(layer, "nexlab")) for layer in (upper, *lower)):
        log.debug("the image has its own /nexlab: the setup files go through the engine")
        return False
    staging = os.path.join(upper, "nexlab")
    os.mkdir(staging, 0o755)
    os.chmod(staging, 0o755)  # whatever the umask
    directory = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for name, data, mode, mtime in files:
            base = name.removeprefix("nexlab/")
            fd = os.open(
                base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=directory
            )
            try:
                safefs.rewrite(fd, data)
                os.fchmod(fd, mode)
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
    finally:
        os.close(directory)
    log.debug("the setup files were written into the container's layer at %s", staging)
    return True


@contextlib.contextmanager
def image_root(container: Container) -> Iterator[Path]:
    """A created, not started, container's filesystem (its image's), read-only on this host,
    or ``Unavailable``: ``nexlab.builder.init.detect_in`` reads the init there."""
    with overlay(layer_dirs(container)) as root:
        yield root


@contextlib.contextmanager
def layer_stream(finished: FinishedSetup) -> Iterator[Streaming]:
    """The kept part of the container's filesystem from its layers, or ``Unavailable``."""
    dirs = layer_dirs(finished.container)
    with overlay(dirs) as root, stream(tar_argv(root)) as tar:
        log.debug("streaming the setup container's filesystem from its layers at %s", root)
        yield tar


@contextlib.contextmanager
def container_stream(finished: FinishedSetup) -> Iterator[Streaming | Iterable[bytes]]:
    """The container's filesystem as a tar stream: from its layers when possible, else ``export``."""
    import docker.errors

    from nexlab.builder.container import export_stream

    with contextlib.ExitStack() as stack:
        try:
            source: Streaming | Iterable[bytes] = stack.enter_context(layer_stream(finished))
        except (Unavailable, NexlabError, docker.errors.DockerException, OSError) as exc:
            log.debug("the container's layers cannot be read here (%s): using the engine's export", exc)
            source = export_stream(finished)
        yield source
