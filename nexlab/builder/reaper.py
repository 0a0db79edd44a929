"""Remove what earlier nexlab runs left behind when they were killed (SIGKILL, a crash, a power cut).

Only what is certainly nexlab's and certainly orphaned is touched: containers
and volumes labelled with an owner PID on this host (same boot, same PID
namespace), mounts inside nexlab's private mount root, loop devices whose
backing file is a nexlab temporary, and the staging directories and partial
outputs recorded in the state directory, each only when the PID in its label
or name is no process any more. Another build running in parallel is never
affected. Each removal is one line of the returned list.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nexlab.errors import DockerError, InputError
from nexlab.host import owned, safefs, signals
from nexlab.run import run

log = logging.getLogger("nexlab.reaper")


@dataclass(frozen=True)
class _Mount:
    source: str
    point: Path
    fstype: str


def reap(*, docker: bool = True, engines: tuple[str | None, ...] = (None,), host: bool = True) -> list[str]:
    """Clean up after dead nexlab processes; returns one line per thing removed.

    ``engines`` (``--engine`` values, None the default one): each is searched for
    containers and volumes of this host's dead processes only (the host label), so a
    shared remote engine keeps every other machine's. ``docker=False`` leaves the
    engines alone, ``host=False`` this host's mounts, loop devices and temporaries (a
    reproducible build reaps those first and the engines only once it needs one: a
    cache hit never connects to an engine).
    """
    removed: list[str] = []
    with signals.deferred():
        for engine in dict.fromkeys(engines) if docker else ():
            removed += _reap_docker(engine)
        if host and os.geteuid() == 0:
            removed += _reap_mounts()
            removed += _reap_loops()
        if host:
            removed += _reap_records()
    return removed


def _orphaned(labels: dict[str, str]) -> int | None:
    """The owner PID when the labels say "made on this host by a process that is gone"."""
    pid = labels.get(owned.LABEL_PID, "")
    if not pid.isdigit() or labels.get(owned.LABEL_HOST) != owned.host_id():
        return None
    return None if owned.alive(int(pid)) else int(pid)


def _reap_docker(where: str | None = None) -> list[str]:
    from nexlab.builder import engine

    try:
        client = engine.connect(where, timeout=10)
    except (DockerError, InputError):
        return []  # no engine, nothing of ours running in it either
    import docker.errors

    removed: list[str] = []
    with contextlib.suppress(docker.errors.DockerException):
        # Every build, repro and boot starts here: a sparse listing carries the labels,
        # without one inspect request per container.
        for container in client.containers.list(all=True, sparse=True, filters={"label": owned.LABEL_PID}):
            labels = container.attrs.get("Labels") or {}
            pid = _orphaned(labels)
            if pid is None:
                continue
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
            role = labels.get(owned.LABEL_ROLE, "?")
            removed.append(f"container {container.short_id} ({role}) of process {pid}")
        for volume in client.volumes.list(filters={"label": owned.LABEL_PID}):
            pid = _orphaned(volume.attrs.get("Labels") or {})
            if pid is None:
                continue
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)
            removed.append(f"volume {volume.name} of process {pid}")
    with contextlib.suppress(Exception):
        client.close()
    return removed


def _mounts() -> list[_Mount]:
    mounts: list[_Mount] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        point = fields[4].encode().decode("unicode_escape")
        mounts.append(_Mount(fields[separator + 2], Path(point), fields[separator + 1]))
    return mounts


def _unmount(mount: _Mount) -> None:
    if run(["umount", str(mount.point)], check=False).returncode != 0:
        run(["umount", "-l", str(mount.point)], check=False)


def _reap_mounts() -> list[str]:
    """Image mounts in nexlab's mount root whose owner is gone, with their loop devices."""
    removed: list[str] = []
    root = owned.mount_root()
    for mount in reversed(_mounts()):
        if mount.point.parent != root:
            continue
        pid = owned.pid_of_tag(mount.point.name)
        if pid is None or owned.alive(pid):
            continue
        _unmount(mount)
        removed.append(f"mount {mount.point} of process {pid}")
        # The device mounted at a private mount point of that process was attached by it.
        if mount.source.startswith("/dev/loop") and run(["losetup", "-d", mount.source], check=False).returncode == 0:
            removed.append(f"loop device {mount.source} of process {pid}")
    for point in root.iterdir():
        pid = owned.pid_of_tag(point.name)
        if pid is not None and not owned.alive(pid) and not os.path.ismount(point):
            with contextlib.suppress(OSError):
                point.rmdir()
    return removed


def _loop_devices() -> list[tuple[str, str]]:
    """(device, backing file) of every attached loop device, from sysfs (no ``losetup`` to run)."""
    found: list[tuple[str, str]] = []
    for backing_file in Path("/sys/block").glob("loop*/loop/backing_file"):
        with contextlib.suppress(OSError):
            found.append((f"/dev/{backing_file.parts[3]}", backing_file.read_text().rstrip("\n")))
    return found


def _reap_loops() -> list[str]:
    """Loop devices whose backing file is the temporary output of a process that is gone."""
    mounted = {mount.source for mount in _mounts()}
    removed: list[str] = []
    for device, backing in _loop_devices():
        backing = backing.removesuffix(" (deleted)")
        name = os.path.basename(backing)
        if not name.endswith(".nexlab-tmp") or device in mounted:
            continue
        pid = owned.pid_of_tag(name)
        if pid is None or owned.alive(pid):
            continue
        if run(["losetup", "-d", device], check=False).returncode == 0:
            removed.append(f"loop device {device} ({backing}) of process {pid}")
    return removed


def _reap_records() -> list[str]:
    """Staging directories and partial outputs recorded by processes that are gone."""
    removed: list[str] = []
    records = owned.records_dir()
    handlers: dict[str, Callable[[Path, int], str | None]] = {
        "staging": _remove_staging,
        "partial": _remove_partial,
        "mount": _remove_mount_point,
    }
    for record in sorted(records.iterdir()):
        pid_text, _, rest = record.name.partition(".")
        kind = rest.rpartition(".")[2]
        if not pid_text.isdigit() or owned.alive(int(pid_text)) or kind not in handlers:
            continue
        try:
            target = Path(os.readlink(record))
        except OSError:
            target = None
        if target is not None:
            try:
                line = handlers[kind](target, int(pid_text))
            except OSError as exc:
                log.debug("cannot remove %s: %s", target, exc)
                continue  # tried again next time
            if line:
                removed.append(line)
        with contextlib.suppress(FileNotFoundError):
            record.unlink()
    return removed


def _ours(path: Path, pid: int) -> bool:
    """Whether ``path`` still looks like what that process made (its PID in the name, our owner)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return owned.pid_of_tag(path.name) == pid and info.st_uid == os.geteuid()


def _remove_staging(path: Path, pid: int) -> str | None:
    if not _ours(path, pid) or not stat.S_ISDIR(os.lstat(path).st_mode):
        return None
    if os.path.ismount(path) and os.geteuid() == 0:
        _unmount(_Mount("", path, "tmpfs"))
    safefs.rmtree(path)
    return f"staging directory {path} of process {pid}"


def _remove_partial(path: Path, pid: int) -> str | None:
    if not _ours(path, pid) or not stat.S_ISREG(os.lstat(path).st_mode):
        return None
    path.unlink()
    return f"partial output {path} of process {pid}"


def _remove_mount_point(path: Path, pid: int) -> str | None:
    if not _ours(path, pid) or os.path.ismount(path):
        return None
    with contextlib.suppress(OSError):
        path.rmdir()
    return None  # the mount itself, if any, was reported by _reap_mounts
