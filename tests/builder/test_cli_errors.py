"""Bad input through the CLI: one clear line, a non-zero exit, no traceback, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DEBIAN_TAG, REPO, SAMPLE_AGENT, loop_devices_for, nexlab_cli


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str, code: int = 2) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def run_id(directory: Path) -> str:
    """The run id (``NEXLAB_RUN_ID``) of the builds a test runs into ``directory``: their containers
    carry it, so another run's containers on the same engine are not counted here."""
    import hashlib

    return "test-" + hashlib.sha256(str(directory).encode()).hexdigest()[:16]


def leftovers(directory: Path) -> list[str]:
    """Anything a build could leave: files, loop devices backed by them, our mounts and containers
    (this test's, by run id)."""
    found = [f"file {p.name}" for p in directory.iterdir() if p.name != "keep"]
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    ours = [line for line in loops.splitlines() if str(directory) in line]
    found += [f"loop {line}" for line in ours]
    # Mounts live in nexlab's root-only mount root, not beside the image: found by their loop device.
    devices = {line.split(":", 1)[0] for line in ours}
    found += [
        f"mount {line}"
        for line in Path("/proc/mounts").read_text().splitlines()
        if str(directory) in line or line.split(" ", 1)[0] in devices
    ]
    containers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=org.nexlab.run={run_id(directory)}"], capture_output=True, text=True
    ).stdout.split()
    found += [f"container {c}" for c in containers]
    return found


def build(
    out: Path, *extra: str, agent: Path = SAMPLE_AGENT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return nexlab_cli(
        "build", "--agent", str(agent), "-o", str(out), *extra, env={"NEXLAB_RUN_ID": run_id(out.parent), **(env or {})}
    )


@pytest.mark.docker  # leftovers() asks the engine for containers
def test_missing_agent(tmp_path: Path) -> None:
    result = build(tmp_path / "rootfs.ext4", agent=tmp_path / "no-such-agent")
    assert_one_line_error(result, "agent", "does not exist")
    assert leftovers(tmp_path) == []


def test_agent_is_a_directory(tmp_path: Path) -> None:
    result = build(tmp_path / "rootfs.ext4", agent=tmp_path)
    assert_one_line_error(result, "not a regular file")


def test_agent_for_another_architecture(tmp_path: Path, debian_base: str, is_root: bool) -> None:
    agent = tmp_path / "agent-arm64"
    # A real ELF64 little-endian header with e_machine 183 (AArch64), as `go build GOARCH=arm64` writes.
    header = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + (2).to_bytes(2, "little") + (183).to_bytes(2, "little")
    agent.write_bytes(header + b"\0" * 100)
    # The agent's machine sets the target (arm64); the amd64 base is refused before anything is built.
    result = build(tmp_path / "rootfs.ext4", "--image", DEBIAN_TAG, agent=agent)
    assert_one_line_error(result, "arm64", "amd64")
    assert not (tmp_path / "rootfs.ext4").exists()


def test_agent_for_a_machine_nexlab_does_not_build_for(tmp_path: Path) -> None:
    agent = tmp_path / "agent-mips"
    header = b"\x7fELF\x01\x02\x01" + b"\0" * 9 + (2).to_bytes(2, "big") + (8).to_bytes(2, "big")
    agent.write_bytes(header + b"\0" * 100)
    result = build(tmp_path / "rootfs.ext4", agent=agent)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr


def test_base_image_missing_and_not_pullable(tmp_path: Path, docker_client: object, is_root: bool) -> None:
    result = build(tmp_path / "rootfs.ext4", "--image", "nexlab/does-not-exist:never")
    assert_one_line_error(result, "nexlab/does-not-exist:never", "could not be pulled", "nexlab base debian")
    assert leftovers(tmp_path) == []


@pytest.mark.docker  # leftovers() asks the engine for containers
def test_docker_not_reachable(tmp_path: Path, is_root: bool) -> None:
    result = build(tmp_path / "rootfs.ext4", env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert_one_line_error(result, f"cannot reach the Docker engine at DOCKER_HOST=unix://{tmp_path}/no-docker.sock")
    assert leftovers(tmp_path) == []


def test_content_larger_than_size_says_what_is_needed(tmp_path: Path, debian_base: str) -> None:
    result = build(tmp_path / "rootfs.ext4", "--image", debian_base, "--size", "64MiB")
    assert_one_line_error(result, "64 MiB is too small", "use --size")
    needed = result.stderr.split("use --size ")[1].split("MiB")[0]
    assert leftovers(tmp_path) == []
    retry = build(tmp_path / "rootfs.ext4", "--image", debian_base, "--size", f"{needed}MiB", "-q")
    assert retry.returncode == 0, f"the advised --size {needed}MiB must be enough: {retry.stderr}"


@pytest.mark.docker  # leftovers() asks the engine for containers
def test_not_root(tmp_path: Path) -> None:
    require_setpriv = subprocess.run(["which", "setpriv"], capture_output=True).returncode == 0
    from tests.conftest import require

    require(require_setpriv, "setpriv (util-linux) to drop root")
    os.chmod(tmp_path, 0o777)
    exe = Path(sys.executable).with_name("nexlab")
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            str(exe),
            "build",
            "--agent",
            str(SAMPLE_AGENT),
            "-o",
            str(tmp_path / "rootfs.ext4"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert_one_line_error(result, "needs root", "--reproducible")
    assert leftovers(tmp_path) == []


def test_bad_size_flag(tmp_path: Path) -> None:
    assert_one_line_error(build(tmp_path / "rootfs.ext4", "--size", "lots"), "invalid size")


#: The setup container runs while the image is made and mounted beside it; a user script that
#: writes 300 MB of noise keeps the extraction into the mounted image busy for a few seconds.
SLEEPING_SCRIPT = ("echo NEXLAB-TEST-READY\nsleep 120\n", "200MiB")
NOISY_SCRIPT = ("head -c 300000000 /dev/urandom >/root/noise\necho NEXLAB-TEST-READY\n", "600MiB")
_PHASES = {"container": SLEEPING_SCRIPT, "extract": NOISY_SCRIPT}


def start_scripted_build(tmp_path: Path, image: str, script: tuple[str, str], *extra: str) -> subprocess.Popen[str]:
    """``nexlab build`` with the user script ``script`` (body, size), returned once the script
    said NEXLAB-TEST-READY; its containers carry this test's run id."""
    body, size = script
    path = tmp_path / "keep" / "slow.sh"
    path.parent.mkdir(exist_ok=True)
    path.write_text(body)
    exe = Path(sys.executable).with_name("nexlab")
    inputs = ["--agent", str(SAMPLE_AGENT), "--image", image, "--size", size, "--script", str(path)]
    child = subprocess.Popen(
        [str(exe), "build", *inputs, "-o", str(tmp_path / "rootfs.ext4"), *extra],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env={**os.environ, "NEXLAB_RUN_ID": run_id(tmp_path)},
    )
    assert child.stderr is not None
    deadline = time.monotonic() + 120
    for line in child.stderr:
        if "NEXLAB-TEST-READY" in line:
            break
        assert time.monotonic() < deadline, "the build never reached the user script"
    return child


def wait_until_mounted(tmp_path: Path, child: subprocess.Popen[str], *, setup: str | None = None) -> None:
    """Until the image exists under its temporary name, on a loop device (made while the setup
    container runs, beside it); with ``setup`` (``running``, ``exited``) also until the setup
    container of this test is in that state (``exited``: the extraction has begun)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        staged = [p for p in tmp_path.iterdir() if p.name.endswith(".nexlab-tmp")]
        if staged and loop_devices_for(staged[0]) and (setup is None or setup_containers(tmp_path, setup)):
            return
        time.sleep(0.02)
    raise AssertionError(f"the mounted image (setup {setup or 'any'}) was never seen")


def setup_containers(tmp_path: Path, status: str) -> list[str]:
    """This test's containers in ``status`` (``docker ps --filter status=``)."""
    listing = ["docker", "ps", "-aq", "--filter", f"label=org.nexlab.run={run_id(tmp_path)}", "--filter"]
    return subprocess.run([*listing, f"status={status}"], capture_output=True, text=True).stdout.split()


@pytest.mark.parametrize("phase", sorted(_PHASES))
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_killed_half_way_leaves_nothing(tmp_path: Path, debian_base: str, sig: signal.Signals, phase: str) -> None:
    child = start_scripted_build(tmp_path, debian_base, _PHASES[phase])
    assert child.stderr is not None
    # Either phase has both sides to undo: while the setup container runs, the image made beside
    # it (a fixed size) already waits mounted for the extraction.
    wait_until_mounted(tmp_path, child, setup="running" if phase == "container" else "exited")
    child.send_signal(sig)
    rest = child.stderr.read()
    assert child.wait(timeout=60) == 130, rest
    assert "interrupted" in rest and "Traceback" not in rest
    assert leftovers(tmp_path) == []


def test_a_size_the_host_side_refuses_fails_before_the_setup_runs(tmp_path: Path, debian_base: str) -> None:
    # The image is made beside the setup container; its error is known before the setup starts.
    script = tmp_path / "keep" / "slow.sh"
    script.parent.mkdir()
    script.write_text(SLEEPING_SCRIPT[0])
    result = build(tmp_path / "rootfs.ext4", "--image", debian_base, "--size", "4MiB", "--script", str(script))
    assert_one_line_error(result, "size 4194304 bytes is too small for an ext4 rootfs", "at least 8MiB")
    assert "NEXLAB-TEST-READY" not in result.stderr, "the setup never ran"
    assert leftovers(tmp_path) == []


def test_engine_address_names_what_was_tried() -> None:
    import docker.constants

    from nexlab.builder.engine import DEFAULT_SOCKET, engine_address

    # The socket the SDK falls back to, as its own constant says.
    assert DEFAULT_SOCKET.split("://")[1] == docker.constants.DEFAULT_UNIX_SOCKET.split("://")[1]
    assert engine_address({}) == f"the default socket {DEFAULT_SOCKET} (DOCKER_HOST is not set)"
    assert engine_address({"DOCKER_HOST": "tcp://10.0.0.1:2375"}) == "DOCKER_HOST=tcp://10.0.0.1:2375"
