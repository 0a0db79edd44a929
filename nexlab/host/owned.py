"""What a nexlab process owns, marked so that a later run can tell whose it is.

Every container and volume nexlab creates carries the labels below; every
temporary on the host (a partial output, a staging directory, a mount point)
has the owner's PID in its name and is recorded in the **state directory**
(``/run/nexlab`` for root, a private per-user one otherwise). A process killed
with SIGKILL leaves them behind; ``nexlab.builder.reaper`` removes those whose
owner is gone, and never what belongs to a live process.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from nexlab.errors import InputError

LABEL_ROLE = "org.nexlab.role"
LABEL_PID = "org.nexlab.pid"
LABEL_RUN = "org.nexlab.run"
#: The kernel's boot id and PID namespace: a PID means this process only on the same boot, in the same namespace.
LABEL_HOST = "org.nexlab.host"

ROOT_STATE = Path("/run/nexlab")


@cache
def run_id() -> str:
    """This process's run id: ``$NEXLAB_RUN_ID`` (tests scope their checks with it), else random."""
    return os.environ.get("NEXLAB_RUN_ID") or uuid.uuid4().hex


def host_id() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "unknown"
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "unknown"
    return f"{boot}/{namespace}"


def labels(role: str) -> dict[str, str]:
    """The labels of a container or volume this process creates."""
    return {LABEL_ROLE: role, LABEL_PID: str(os.getpid()), LABEL_RUN: run_id(), LABEL_HOST: host_id()}


def alive(pid: int) -> bool:
    """True unless ``pid`` is certainly gone (a process we may not signal is alive)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _private_dir(path: Path) -> Path:
    """``path`` as a directory only we can enter; refuse one that someone else controls."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=False)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise InputError(f"{path} is not a directory owned by this user", hint="remove it or fix its owner")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def state_dir() -> Path:
    """``/run/nexlab`` (root), else ``$XDG_RUNTIME_DIR/nexlab``, else ``$TMPDIR/nexlab-UID``: 0700, ours."""
    if os.geteuid() == 0:
        ROOT_STATE.parent.mkdir(parents=True, exist_ok=True)
        return _private_dir(ROOT_STATE)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return _private_dir(Path(runtime) / "nexlab")
    return _private_dir(Path(tempfile.gettempdir()) / f"nexlab-{os.geteuid()}")


def mount_root() -> Path:
    """Where mount builds mount images: inside the 0700 state directory, so no other user can
    reach a mounted image's setuid binaries or device nodes."""
    return _private_dir(state_dir() / "mounts")


def records_dir() -> Path:
    return _private_dir(state_dir() / "owned")


_TAG = re.compile(r"nx(\d+)-[0-9a-f]{8}")


def tag() -> str:
    """``nxPID-RANDOM``: the part of a temporary's name that says whose it is."""
    return f"nx{os.getpid()}-{uuid.uuid4().hex[:8]}"


def pid_of_tag(name: str) -> int | None:
    """The PID in a name made with ``tag()``, or None."""
    found = _TAG.findall(name)
    return int(found[-1]) if found else None


@contextlib.contextmanager
def recorded(kind: str, path: Path) -> Iterator[None]:
    """Record that this process owns ``path`` (a ``kind`` the reaper knows) while the block runs."""
    record = records_dir() / f"{os.getpid()}.{uuid.uuid4().hex[:8]}.{kind}"
    os.symlink(os.path.abspath(path), record)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(record)
