"""Run ``nexlab`` as user nobody with access to the Docker socket only: the normal user's path."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import require

DOCKER_SOCKET = Path("/var/run/docker.sock")


@contextlib.contextmanager
def nobody_directory() -> Iterator[Path]:
    """A fresh directory nobody may write (removed afterwards); fails under CI=true without the means."""
    setpriv = shutil.which("setpriv")
    require(setpriv is not None and os.geteuid() == 0 and DOCKER_SOCKET.exists(), "root, setpriv and the Docker socket")
    assert stat.S_ISSOCK(DOCKER_SOCKET.stat().st_mode)
    directory = Path(tempfile.mkdtemp(prefix="nexlab-nobody-"))
    try:
        os.chmod(directory, 0o777)
        yield directory
    finally:
        shutil.rmtree(directory)


def nexlab_as_nobody(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``nexlab ARGS`` as uid/gid 65534 in ``directory`` (also its HOME), in the Docker socket's group."""
    exe = str(Path(sys.executable).with_name("nexlab"))
    group = DOCKER_SOCKET.stat().st_gid
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", f"--groups={group}", exe, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "HOME": str(directory)},
        cwd=directory,
    )
