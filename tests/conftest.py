"""Shared fixtures: the real Docker engine, root, base images, QEMU and a kernel.

Locally a missing component skips the tests that need it. With ``CI=true`` a
skip is a failure (diffoscope's NO_SKIP idea): CI must run everything, so a
skipped test there means the set-up is broken. Only a skip whose reason starts
with ``optional:`` survives in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NEXLAB_SHARED", REPO.parent / "shared"))
SAMPLE_AGENT = REPO / "nexlab" / "builder" / "assets" / "sample-agent.sh"
DEBIAN_TAG = os.environ.get("NEXLAB_DEBIAN_TAG", "nexlab/debian:bookworm")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class _AlpineTarballs(Mapping[str, Path]):
    """The official minirootfs per release: ../shared/data, then the cache folder, then downloaded.

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if IN_CI and report.skipped and not _is_optional(report):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true forbids skips): {report.longrepr}"


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
