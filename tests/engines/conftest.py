"""A second Docker engine for the session: its own dockerd (and containerd), data root, exec
root and bridge, listening only on a loopback TCP port, no iptables; stopped at the end.

Not ``--bridge=none``: dockerd 20.10 started that way deletes ``docker0``, the first
engine's bridge, from the host (``removeDefaultBridgeInterface``), and every container
of the first engine on the default network then fails to start. So it gets a bridge
of its own, made here and deleted at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _unmount_beneath(root: Path) -> None:
    """Whatever the daemon left mounted in its own directories (deepest first), then nothing."""
    from nexlab.run import run

    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if str(root) in line]
    for point in sorted(points, key=len, reverse=True):
        run(["umount", "-l", point], check=False)


@pytest.fixture(scope="session")
def second_engine(docker_client, debian_base) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``tcp://127.0.0.1:PORT`` of a dockerd of our own holding the Debian base (loaded through the SDK)."""
    from nexlab.builder import engine
    from nexlab.errors import DockerUnavailableError
    from nexlab.run import run, spawn, which

    require(os.geteuid() == 0, "root (to start a second dockerd)")
    try:
        which("dockerd")
    except Exception:
        require(False, "dockerd")
    data = Path(tempfile.mkdtemp(prefix="nexlab-dockerd2-", dir="/var/tmp"))
    # containerd's sockets live in the exec root: a short path (a socket's name has 108 bytes).
    exec_root = Path(tempfile.mkdtemp(prefix="nx-d2-", dir="/run"))
    config = exec_root / "daemon.json"
    config.write_text(json.dumps({}))  # not the host's /etc/docker/daemon.json (its hosts would clash)
    url = f"tcp://127.0.0.1:{_free_port()}"
    bridge = f"nx2-{uuid.uuid4().hex[:8]}"
    argv = [
        "dockerd", "--config-file", str(config), "--data-root", str(data / "root"), "--exec-root", str(exec_root / "x"),
        "--pidfile", str(exec_root / "dockerd.pid"), "--host", url, "--bridge", bridge, "--iptables=false",
        "--ip6tables=false", "--ip-masq=false",
    ]  # fmt: skip
    log = data / "dockerd.log"
    try:
        run(["ip", "link", "add", bridge, "type", "bridge"])
        run(["ip", "addr", "add", f"10.213.{random.randrange(1, 254)}.1/24", "dev", bridge])
        run(["ip", "link", "set", bridge, "up"])
        with open(log, "wb") as output, spawn(argv, stdout=output, stderr=subprocess.STDOUT, grace=30) as daemon:
            client = None
            deadline = time.monotonic() + 90
            while client is None:
                if daemon.poll() is not None:
                    pytest.fail(f"the second dockerd exited {daemon.returncode}: {log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"the second dockerd did not answer on {url}: {log.read_text()[-2000:]}")
                with contextlib.suppress(DockerUnavailableError):
                    client = engine.connect(url, timeout=5)
                time.sleep(0.3)
            # The base through the SDK: save from the local engine, load into this one.
            with tempfile.TemporaryFile(dir="/var/tmp") as archive:
                for chunk in docker_client.images.get(debian_base).save(named=True):
                    archive.write(chunk)
                archive.seek(0)
                client.images.load(archive)
            assert client.images.get(debian_base).id == docker_client.images.get(debian_base).id
            client.close()
            yield url
    finally:
        run(["ip", "link", "del", bridge], check=False)
        _unmount_beneath(data)
        _unmount_beneath(exec_root)
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(exec_root, ignore_errors=True)
