"""The base matrix: every base the project makes offline, built on both paths, audited, and booted.

Each base is made once per session (``nexlab base``, from its debootstrap cache
when there is one) and each image built once, then shared by the audit and
boot tests. Boots are ``qemu``/``slow``: about 30-45 s each under TCG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from nexlab.audit import audit
from nexlab.audit.findings import Severity
from nexlab.build import base
from nexlab.build.pipeline import build_rootfs
from tests.boot.conftest import qemu_kernel  # noqa: F401 (a fixture)
from tests.conftest import ALPINE_TARBALLS, SAMPLE_AGENT, require

pytestmark = [pytest.mark.docker, pytest.mark.root, pytest.mark.slow]


@dataclass(frozen=True)
class Base:
    name: str
    init: str
    size: str
    #: Debian variant (suite, init, keep_caches) or an Alpine release.
    debian: tuple[str, str, bool] | None = None
    alpine: str | None = None


BASES = [
    Base("bookworm-openrc", "openrc", "200MiB", debian=("bookworm", "openrc", False)),
    Base("trixie-openrc", "openrc", "240MiB", debian=("trixie", "openrc", False)),
    Base("bookworm-systemd", "systemd", "300MiB", debian=("bookworm", "systemd", False)),
    # apt's downloaded packages are left in: these do not fit 200 MiB today.
    Base("bookworm-openrc-caches", "openrc", "400MiB", debian=("bookworm", "openrc", True)),
    Base("bookworm-systemd-caches", "systemd", "480MiB", debian=("bookworm", "systemd", True)),
    Base("alpine-3.19", "busybox", "64MiB", alpine="3.19"),
    Base("alpine-3.20", "busybox", "64MiB", alpine="3.20"),
]
IDS = [b.name for b in BASES]


@pytest.fixture(scope="session")
def matrix_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("matrix")


_tags: dict[str, str] = {}
_images: dict[tuple[str, bool], Path] = {}


def base_tag(spec: Base) -> str:
    if spec.name not in _tags:
        if spec.debian is not None:
            suite, init, keep = spec.debian
            variant = base.DebianSpec.variant(suite, init, keep_caches=keep)
            _tags[spec.name] = base.debian(variant.default_tag(), variant).tag
        else:
            assert spec.alpine is not None
            tarball = ALPINE_TARBALLS[spec.alpine]
            require(tarball.is_file(), f"the Alpine {spec.alpine} minirootfs")
            _tags[spec.name] = base.alpine(tarball).tag
    return _tags[spec.name]


def image_of(spec: Base, directory: Path, *, reproducible: bool) -> Path:
    key = (spec.name, reproducible)
    if key not in _images:
        out = directory / f"{spec.name}{'-repro' if reproducible else ''}.ext4"
        result = build_rootfs(out, agent=SAMPLE_AGENT, image=base_tag(spec), size=spec.size, reproducible=reproducible)
        populate = next((s for s in result.steps if s.step == "populate"), None)
        if populate is not None:
            assert getattr(populate, "init", None) == spec.init, "the base's init was detected"
        _images[key] = out
    return _images[key]


@pytest.mark.parametrize("reproducible", [False, True], ids=["mount", "reproducible"])
@pytest.mark.parametrize("spec", BASES, ids=IDS)
def test_builds_and_audits_without_high_findings(
    spec: Base, reproducible: bool, matrix_dir: Path, docker_client: object, is_root: bool
) -> None:
    image = image_of(spec, matrix_dir, reproducible=reproducible)
    result = audit(image, hash=False)
    high = [f"{f.code}: {f.message}" for f in result.findings if f.severity.rank >= Severity.HIGH.rank]
    assert high == []


@pytest.mark.qemu
@pytest.mark.usefixtures("qemu_kernel")
@pytest.mark.parametrize("spec", [b for b in BASES if not b.name.endswith("-caches")], ids=lambda b: b.name)
def test_boots_to_the_agent(spec: Base, matrix_dir: Path, docker_client: object, is_root: bool) -> None:
    from nexlab.boot import boot

    image = image_of(spec, matrix_dir, reproducible=False)
    result = boot(image, timeout=240, log=matrix_dir / f"{spec.name}.console")
    assert result.ok, f"{result.reason}: {result.last_lines[-5:]}"


CRASHING_AGENT = '#!/bin/sh\necho "agent: cannot reach the control plane" >&2\nexit 1\n'
#: Per init: what makes the agent never start (a debugfs request on a copy of the good image).
DISABLE = {
    "openrc": "rm /etc/runlevels/boot/agent",
    "systemd": "rm /etc/systemd/system/multi-user.target.wants/agent.service",
    "busybox": None,  # covered by the crash: busybox's inittab is rewritten below
}
FAST_FAIL = {b.init: b for b in BASES if b.name in ("bookworm-openrc", "bookworm-systemd", "alpine-3.20")}


@pytest.mark.qemu
@pytest.mark.usefixtures("qemu_kernel")
@pytest.mark.parametrize("init", sorted(FAST_FAIL))
def test_booted_without_the_agent_fails_with_the_reason(
    init: str, matrix_dir: Path, docker_client: object, is_root: bool
) -> None:
    import shutil

    from nexlab.boot import Outcome, boot
    from nexlab.run import run

    spec = FAST_FAIL[init]
    image = matrix_dir / f"{spec.name}-no-agent.ext4"
    shutil.copyfile(image_of(spec, matrix_dir, reproducible=False), image)
    if init == "busybox":
        inittab = matrix_dir / "inittab-no-agent"
        inittab.write_text(
            "::sysinit:/usr/local/sbin/agent-service sysinit\nttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n"
        )
        for request in ("rm /etc/inittab", f"write {inittab} /etc/inittab"):
            run(["debugfs", "-w", "-R", request, str(image)])
    else:
        run(["debugfs", "-w", "-R", str(DISABLE[init]), str(image)])
    result = boot(image, timeout=240, log=matrix_dir / f"{spec.name}-no-agent.console")
    assert result.outcome == Outcome.NO_AGENT, f"{result.reason}: {result.last_lines[-5:]}"
    assert "booted without starting the agent" in result.reason


@pytest.mark.qemu
@pytest.mark.usefixtures("qemu_kernel")
@pytest.mark.parametrize("init", ["systemd", "busybox"])
def test_an_agent_that_dies_at_start_up_is_a_crash(
    init: str, matrix_dir: Path, docker_client: object, is_root: bool
) -> None:
    from nexlab.boot import Outcome, boot

    spec = FAST_FAIL[init]
    agent = matrix_dir / "crashing-agent.sh"
    agent.write_text(CRASHING_AGENT)
    agent.chmod(0o755)
    image = build_rootfs(
        matrix_dir / f"{spec.name}-crash.ext4", agent=agent, image=base_tag(spec), size=spec.size
    ).output
    result = boot(image, timeout=240, log=matrix_dir / f"{spec.name}-crash.console")
    assert result.outcome == Outcome.SERVICE_CRASHED, f"{result.reason}: {result.last_lines[-5:]}"
