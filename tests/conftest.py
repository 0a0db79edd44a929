"""Shared fixtures: the real Docker engine, root, base images, QEMU and a kernel.

Locally a missing component skips the tests that need it. With ``CI=true`` a
skip is a failure (diffoscope's NO_SKIP idea): CI must run everything, so a
skipped test there means the set-up is broken. Only a skip whose reason starts
with ``optional:`` survives in CI.

The fast lane (``make test-fast``, ``NEXLAB_TEST_LANE=fast``) runs every test that
needs neither Docker nor QEMU. Which tests those are is derived, not listed: a
test whose fixtures reach ``docker_client`` or ``qemu_kernel`` (directly or
through ``debian_base``, ``agent_image``…) is marked ``docker``/``qemu`` here, as
are tests marked so by hand, and the lane leaves them out, with those marked
``slow`` (the reader's fuzzer: 70 s). So that a test cannot
slip into the lane by using Docker or QEMU without those fixtures, the lane
fences both off (``_fence``): the Docker socket and the QEMU, qemu-img and docker
programs fail the test that reaches them, in this process and in the ``nexlab``
commands it runs. And a test cannot silently drop out of it: like CI, the lane
turns a skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NEXLAB_SHARED", REPO.parent / "shared"))
SAMPLE_AGENT = REPO / "nexlab" / "builder" / "assets" / "sample-agent.sh"
DEBIAN_TAG = os.environ.get("NEXLAB_DEBIAN_TAG", "nexlab/debian:bookworm")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FAST_LANE = os.environ.get("NEXLAB_TEST_LANE", "") == "fast"
#: The fixtures through which tests reach Docker or QEMU, and the marker each implies.
HEAVY_FIXTURES = {"docker_client": "docker", "qemu_kernel": "qemu"}
HEAVY_MARKERS = ("docker", "qemu")
#: Programs the fast lane must never start (docker-the-CLI too: the engine is out of bounds).
FENCED_PROGRAMS = ("qemu-system-x86_64", "qemu-system-aarch64", "qemu-img", "docker", "dockerd")


class _AlpineTarballs(Mapping[str, Path]):
    """The official minirootfs per release: ``$NEXLAB_SHARED/data``, then the cache folder, then downloaded.

    Resolved on first use (a download only when a test asks for it). When none
    can be had the path returned does not exist, so the test's ``require`` skips
    it, or with CI=true fails it.
    """

    def __init__(self) -> None:
        self._found: dict[str, Path] = {}

    def __getitem__(self, version: str) -> Path:
        from nexlab.builder import base
        from nexlab.errors import InputError

        if version not in self._found:
            try:
                self._found[version] = base.alpine_tarball(version, (SHARED / "data",))
            except InputError as exc:
                print(f"Alpine {version}: {exc}", file=sys.stderr)
                self._found[version] = SHARED / "data" / base.alpine_release(version).filename
        return self._found[version]

    def __iter__(self) -> Iterator[str]:
        return iter(("3.19", "3.20"))

    def __len__(self) -> int:
        return 2


ALPINE_TARBALLS = _AlpineTarballs()


def require(condition: bool, what: str) -> None:
    """Skip (locally) or fail (CI) when a component the test needs is missing."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI=true and {what}: the CI set-up must provide it")
        pytest.skip(f"needs {what}")


def pytest_configure(config: pytest.Config) -> None:
    # Every reproducible build in the suite is a clean one (so two builds compared are two
    # builds), unless a test hands it a cache of its own (tests/cache/).
    os.environ.setdefault("NEXLAB_BUILD_CACHE", "off")
    # A suite started in the background of a non-interactive shell (`make test &`, some CI
    # runners) inherits SIGINT ignored, and so would every nexlab the tests start: the Ctrl-C
    # tests would test nothing. Python's own handler again; children then get the default.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if FAST_LANE:
        _fence(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        closure = getattr(item, "fixturenames", ())
        for fixture, marker in HEAVY_FIXTURES.items():
            if fixture in closure and item.get_closest_marker(marker) is None:
                item.add_marker(marker)
    if FAST_LANE:
        heavy = [item for item in items if any(item.get_closest_marker(m) for m in (*HEAVY_MARKERS, "slow"))]
        if heavy:
            config.hook.pytest_deselected(items=heavy)
            items[:] = [item for item in items if item not in set(heavy)]


class FencedOff(RuntimeError):
    """The fast lane reached Docker or QEMU: the test needs the docker_client or qemu_kernel fixture."""


def _fence(config: pytest.Config) -> None:
    """Make Docker and QEMU unreachable for the fast lane, in this process and in its children."""
    shims = Path(tempfile.mkdtemp(prefix="nexlab-fast-lane-"))
    config.add_cleanup(lambda: shutil.rmtree(shims, ignore_errors=True))
    for name in FENCED_PROGRAMS:
        shim = shims / name
        shim.write_text(f"#!/bin/sh\necho 'fast lane: {name} is fenced off (give the test its fixture)' >&2\nexit 97\n")
        shim.chmod(0o755)
    os.environ["PATH"] = f"{shims}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["DOCKER_HOST"] = f"unix://{shims}/no-docker-in-the-fast-lane.sock"

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "subprocess.Popen":
            program = args[0] if args[0] else (args[1][0] if args[1] else "")  # type: ignore[index]
            name = os.path.basename(os.fsdecode(program))  # type: ignore[arg-type]
            if name in FENCED_PROGRAMS and not str(program).startswith(str(shims)):
                raise FencedOff(f"fast lane: the test started {name}; give it the fixture that needs it")
        elif event == "socket.connect":
            address = args[1]
            if isinstance(address, str | bytes) and b"docker" in os.fsencode(address):
                raise FencedOff(f"fast lane: the test connected to Docker at {address!r}; give it docker_client")

    sys.addaudithook(hook)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if (IN_CI or FAST_LANE) and report.skipped and not _is_optional(report):
        why = "CI (CI=true forbids skips)" if IN_CI else "the fast lane (a test it selects must run there)"
        report.outcome = "failed"
        report.longrepr = f"skipped in {why}: {report.longrepr}"


def _is_optional(report: pytest.TestReport) -> bool:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return "optional:" in reason


@pytest.fixture(scope="session")
def is_root() -> bool:
    require(os.geteuid() == 0, "root (loop devices and mount)")
    return True


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    from nexlab.builder import engine
    from nexlab.errors import DockerUnavailableError

    try:
        client = engine.connect(timeout=10)
    except DockerUnavailableError:
        client = None
    require(client is not None, "a Docker engine (run .ci/ensure-dockerd)")
    return client


@pytest.fixture(scope="session")
def debian_base(docker_client, is_root) -> str:  # type: ignore[no-untyped-def]
    """The offline Debian base image; made (from the cache when possible) if missing."""
    from nexlab.builder import base

    base.debian(DEBIAN_TAG)
    return DEBIAN_TAG


@pytest.fixture(scope="session")
def alpine_base(docker_client) -> str:  # type: ignore[no-untyped-def]
    from nexlab.builder import base

    tarball = ALPINE_TARBALLS["3.19"]
    require(tarball.is_file(), f"the Alpine minirootfs in {tarball.parent}")
    return base.alpine(tarball).tag


@pytest.fixture(scope="session")
def sample_agent() -> Path:
    return SAMPLE_AGENT


def loop_devices_for(image: Path) -> str:
    """losetup's listing of loop devices backed by ``image`` (empty when none)."""
    return subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True, check=False).stdout


def mounts_containing(fragment: str) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if fragment in line]


def remove_tree(path: Path) -> None:
    """Remove a test's scratch directory, unless something is still mounted under it.

    A suite run keeps ~25 GB of images if its directories stay to the end (CI ran out of disk),
    so shared fixtures remove theirs when done. A mount left under one (a test that leaked it
    fails on its own) would make rmtree descend into the mounted image: such a tree is kept.
    """
    if not path.exists() or mounts_containing(str(path)):
        return
    shutil.rmtree(path, ignore_errors=True)


def sparse_copy(source: Path, target: Path) -> Path:
    """Copy an image keeping its holes (``shutil.copyfile`` writes them out as zeros)."""
    from nexlab.host import sparse

    sparse.copy(source, target)
    return target


def scratch(parent: Path, name: str) -> Path:
    """A new directory ``name`` under ``parent`` (a fixture's share of ``module_tmp``)."""
    path = parent / name
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def module_tmp(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory for one module's shared files, removed when the module's tests are done."""
    path = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    yield path
    remove_tree(path)


def pytest_report_header(config: pytest.Config) -> str:
    free = shutil.disk_usage(tempfile.gettempdir()).free
    return f"nexlab: {free / 2**30:.1f} GiB free in {tempfile.gettempdir()} (a full run peaks at a few GiB)"


def nexlab_cli(
    *args: str, check: bool = False, timeout: float = 600, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``nexlab`` command the way a user would."""
    exe = shutil.which("nexlab", path=str(Path(sys.executable).parent)) or "nexlab"
    return subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
