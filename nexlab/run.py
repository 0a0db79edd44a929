"""The one way nexlab runs a program.

argv lists only (never a shell string), a fixed C locale and UTC so output
parses the same on every host, stdin from /dev/null, the command logged before
it runs, and a failure turned into a ``CommandError`` that carries the exit
status and the end of stderr. A missing program is a ``ToolMissingError`` that
names the Debian package to install.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from nexlab.errors import CommandError, ToolMissingError

log = logging.getLogger("nexlab.run")

#: Which Debian package provides each program nexlab runs.
DEBIAN_PACKAGES = {
    "mkfs.ext4": "e2fsprogs",
    "mke2fs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "dumpe2fs": "e2fsprogs",
    "tune2fs": "e2fsprogs",
    "losetup": "mount",
    "mount": "mount",
    "umount": "mount",
    "debootstrap": "debootstrap",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "diffoscope": "diffoscope",
    "chromium": "chromium",
}

_SBIN = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def base_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A small, fixed environment: the host's locale and time zone never leak in."""
    env = {
        "PATH": os.environ.get("PATH", _SBIN) + ":" + _SBIN,
        "LC_ALL": "C",
        "LANG": "C",
        "TZ": "UTC",
    }
    for passthrough in ("HOME", "TMPDIR", "DOCKER_HOST"):
        if passthrough in os.environ:
            env[passthrough] = os.environ[passthrough]
    if extra:
        env.update(extra)
    return env


def which(tool: str) -> str:
    """Path of ``tool`` or ``ToolMissingError``; sbin is searched even for normal users."""
    found = shutil.which(tool, path=os.environ.get("PATH", "") + ":" + _SBIN)
    if not found:
        raise ToolMissingError(tool, DEBIAN_PACKAGES.get(tool))
    return found


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: bytes | None = None,
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    uninterruptible: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion and return its captured output as text.

    ``uninterruptible`` runs it in a process group of its own, so a terminal's Ctrl-C
    (sent to the whole foreground group) reaches only nexlab: for steps such as
    ``losetup`` that must never die half-way, while nexlab holds the signal back.
    """
    argv = [str(arg) for arg in argv]
    executable = which(argv[0])
    log.debug("running: %s", shlex.join(argv))
    try:
        result = subprocess.run(
            [executable, *argv[1:]],
            env=base_environment(env),
            stdin=subprocess.DEVNULL if input is None else None,
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            cwd=cwd,
            check=False,
            process_group=0 if uninterruptible else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, f"timed out after {timeout} s") from exc
    if check and result.returncode != 0:
        log.debug("%s exited %d: %s", argv[0], result.returncode, result.stderr.strip())
        raise CommandError(argv, result.returncode, result.stderr or result.stdout)
    return result
