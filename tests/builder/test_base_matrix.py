"""The base matrix: every base the project makes offline, built on both paths, audited, and booted.

Each base is made once per session (``nexlab base``, from its debootstrap cache
when there is one) and each image built once, then shared by the audit and
boot tests. Boots are ``qemu``/``slow``: about 30-45 s each under TCG.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from nexlab.audit import audit
from nexlab.audit.findings import Severity
from nexlab.builder import base
from nexlab.builder.pipeline import build_rootfs
from tests.boot.conftest import qemu_kernel  # noqa: F401 (a fixture)
from tests.conftest import ALPINE_TARBALLS, SAMPLE_AGENT, require, sparse_copy

pytestmark = [pytest.mark.docker, pytest.mark.root, pytest.mark.slow]


@dataclass(frozen=True)
class Base:
    name: str
    init: str
    size: str
    #: Debian variant (suite, init, keep_caches), an Alpine release, or a Dockerfile (its FROM is
    #: the default Debian base) built with the docker SDK.
    debian: tuple[str, str, bool] | None = None
    alpine: str | None = None
    dockerfile: str | None = None


#: How users make bases: RUN apt-get install without a clean leaves the lists and .debs in.
DOCKERFILE = """FROM {base}
RUN apt-get update && apt-get install -y --no-install-recommends less
"""


BASES = [
    Base("bookworm-openrc", "openrc", "200MiB", debian=("bookworm", "openrc", False)),
    Base("trixie-openrc", "openrc", "240MiB", debian=("trixie", "openrc", False)),
    Base("bookworm-systemd", "systemd", "300MiB", debian=("bookworm", "systemd", False)),
    Base("bookworm-sysvinit", "sysvinit", "200MiB", debian=("bookworm", "sysvinit", False)),
    # apt's downloaded packages and lists are left in: they are not copied, so the caches
    # bases build at the sizes of their clean twins (the seed recipe's 200 MiB for OpenRC).
    Base("bookworm-openrc-caches", "openrc", "200MiB", debian=("bookworm", "openrc", True)),
    Base("bookworm-systemd-caches", "systemd", "300MiB", debian=("bookworm", "systemd", True)),
    Base("dockerfile-openrc", "openrc", "200MiB", dockerfile=DOCKERFILE),
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
        elif spec.dockerfile is not None:
            _tags[spec.name] = _build_dockerfile(spec)
        else:
            assert spec.alpine is not None
            tarball = ALPINE_TARBALLS[spec.alpine]
            require(tarball.is_file(), f"the Alpine {spec.alpine} minirootfs")
            _tags[spec.name] = base.alpine(tarball).tag
    return _tags[spec.name]


def _build_dockerfile(spec: Base) -> str:
    import io

    import docker.errors

    from nexlab.builder import engine

    assert spec.dockerfile is not None
    parent = base.debian().tag
    tag = f"nexlab-test/{spec.name}:matrix"
    text = spec.dockerfile.format(base=parent)
    try:
        engine.connect().images.build(
            fileobj=io.BytesIO(text.encode()), tag=tag, rm=True, forcerm=True, network_mode="bridge"
        )
    except docker.errors.BuildError as exc:
        require(False, f"deb.debian.org from a build container ({exc})")
    return tag


def image_of(spec: Base, directory: Path, *, reproducible: bool) -> Path:
    key = (spec.name, reproducible)
    if key not in _images or not _images[key].exists():
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
    if reproducible:
        image.unlink()  # only the mount-path images are booted; the session's disk use stays small


CRASHING_AGENT = '#!/bin/sh\necho "agent: cannot reach the control plane" >&2\nexit 1\n'
#: A busybox inittab without the agent's entry (the getty stays: it is how boot ends).
BUSYBOX_NO_AGENT = "::sysinit:/usr/local/sbin/agent-service sysinit\nttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n"
#: Per init: what makes the agent never start (debugfs requests on a copy of the good image).
DISABLE = {
    "openrc": ["rm /etc/runlevels/boot/agent"],
    "systemd": ["rm /etc/systemd/system/multi-user.target.wants/agent.service"],
    "busybox": ["rm /etc/inittab", "write {inittab} /etc/inittab"],
}
BY_NAME = {b.name: b for b in BASES}


@dataclass(frozen=True)
class BootCase:
    """One boot of the matrix: a base, what was done to its image, the verdict expected."""

    base: str
    variant: str  # "good", "no-agent" (service disabled) or "crash" (an agent that exits 1)
    expected: str  # an Outcome's name

    @property
    def id(self) -> str:
        return f"{self.base}-{self.variant}"


BOOT_CASES = [
    *(BootCase(b.name, "good", "AGENT_STARTED") for b in BASES if not b.name.endswith("-caches")),
    *(BootCase(name, "no-agent", "NO_AGENT") for name in ("bookworm-openrc", "bookworm-systemd", "alpine-3.20")),
    *(BootCase(name, "crash", "SERVICE_CRASHED") for name in ("bookworm-systemd", "alpine-3.20", "bookworm-sysvinit")),
]


def boot_image(case: BootCase, directory: Path) -> Path:
    from nexlab.run import run

    spec = BY_NAME[case.base]
    if case.variant == "good":
        return image_of(spec, directory, reproducible=False)
    if case.variant == "crash":
        agent = directory / "crashing-agent.sh"
        agent.write_text(CRASHING_AGENT)
        agent.chmod(0o755)
        out = directory / f"{case.id}.ext4"
        return build_rootfs(out, agent=agent, image=base_tag(spec), size=spec.size).output
    image = sparse_copy(image_of(spec, directory, reproducible=False), directory / f"{case.id}.ext4")
    inittab = directory / "inittab-no-agent"
    inittab.write_text(BUSYBOX_NO_AGENT)
    for request in DISABLE[spec.init]:
        run(["debugfs", "-w", "-R", request.format(inittab=inittab), str(image)])
    return image


#: Boots that run side by side: each QEMU (TCG, one vCPU) keeps one core busy.
BOOT_WORKERS = int(os.environ.get("NEXLAB_BOOT_WORKERS", min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def matrix_boots(request: pytest.FixtureRequest, matrix_dir: Path, docker_client: object, is_root: bool):  # type: ignore[no-untyped-def]
    """The boot result of every selected case: images built one by one, booted ``BOOT_WORKERS`` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from nexlab.boot import boot

    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_boot_verdict" and hasattr(item, "callspec")
    ]
    images = {case.id: boot_image(case, matrix_dir) for case in selected}

    def one(case: BootCase):  # type: ignore[no-untyped-def]
        return boot(images[case.id], timeout=300, log=matrix_dir / f"{case.id}.console")

    with ThreadPoolExecutor(max_workers=max(BOOT_WORKERS, 1)) as pool:
        results = dict(zip([c.id for c in selected], pool.map(one, selected), strict=True))
    for case in selected:
        if case.variant != "good":  # made for this boot only
            images[case.id].unlink()
    return results


@pytest.mark.qemu
@pytest.mark.usefixtures("qemu_kernel")
@pytest.mark.parametrize("case", BOOT_CASES, ids=lambda c: c.id)
def test_boot_verdict(case: BootCase, matrix_boots) -> None:  # type: ignore[no-untyped-def]
    """Good images boot to the agent; broken ones fail with the reason (not the timeout)."""
    from nexlab.boot import Outcome

    result = matrix_boots[case.id]
    assert result.outcome == Outcome[case.expected], f"{result.reason}: {result.last_lines[-5:]}"
    if case.variant == "no-agent":
        assert "booted without starting the agent" in result.reason


def test_systemd_image_with_an_openrc_script_is_high_and_fails_the_build_check(
    matrix_dir: Path, docker_client: object, is_root: bool
) -> None:
    """The issue's image: systemd as PID 1, the agent only as an OpenRC script."""
    from nexlab.builder.init import InitKind
    from nexlab.builder.service_check import check_service
    from nexlab.errors import AgentServiceError
    from nexlab.run import run

    image = sparse_copy(
        image_of(BY_NAME["bookworm-systemd"], matrix_dir, reproducible=False), matrix_dir / "systemd-openrc-script.ext4"
    )
    script = matrix_dir / "agent.openrc"
    script.write_text("#!/sbin/openrc-run\ncommand=/usr/local/bin/agent\n")
    requests = (
        "mkdir /etc/init.d",
        f"write {script} /etc/init.d/agent",
        "rm /etc/systemd/system/multi-user.target.wants/agent.service",
        "rm /etc/systemd/system/agent.service",
    )
    # New blocks first, removals last: debugfs can hand a block that rm just freed to both
    # mkdir and write (e2fsck then finds it claimed twice, which is the test's doing, not nexlab's).
    run(["debugfs", "-w", "-f", "-", str(image)], input="\n".join(requests).encode() + b"\n")
    result = audit(image, hash=False)
    high = {f.code: f for f in result.findings if f.severity.rank >= Severity.HIGH.rank}
    assert set(high) == {"service-missing"}
    assert "systemd is PID 1" in high["service-missing"].message
    assert "OpenRC script" in high["service-missing"].message
    with pytest.raises(AgentServiceError, match="systemd is PID 1"):
        check_service(image, InitKind.SYSTEMD)
