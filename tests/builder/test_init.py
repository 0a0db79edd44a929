"""Init detection and the real-world shapes of a base: each handled or refused clearly, before or by the build."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexlab.builder.init import InitKind, choose, classify, detect
from nexlab.builder.pipeline import build_rootfs
from nexlab.errors import AgentServiceError, BaseImageError, ContainerFailedError, InputError
from tests.conftest import SAMPLE_AGENT, nexlab_cli

pytestmark = [pytest.mark.docker]


def test_classify_by_name_and_bytes() -> None:
    assert classify("/lib/systemd/systemd", b"", openrc=False) == InitKind.SYSTEMD
    assert classify("/lib/systemd/systemd", b"", openrc=True) == InitKind.SYSTEMD, "PID 1 wins over OpenRC"
    assert classify("/bin/busybox", b"", openrc=False) == InitKind.BUSYBOX
    assert classify("/bin/busybox", b"", openrc=True) == InitKind.OPENRC
    assert classify("/sbin/init", b"\x7fELF..INIT_VERSION=sysvinit-3.06", openrc=False) == InitKind.SYSVINIT
    assert classify("/sbin/init", b"\x7fELF..INIT_VERSION=sysvinit-3.06", openrc=True) == InitKind.OPENRC
    assert classify("/sbin/init", b"\x7fELF BusyBox v1.36", openrc=False) == InitKind.BUSYBOX
    assert classify("/sbin/init", b"#!/bin/sh\necho hi\n", openrc=False) is None
    assert classify(None, b"", openrc=False) is None


def _image(client, tag: str, files: dict[str, bytes]) -> str:  # type: ignore[no-untyped-def]
    return _linked_image(client, tag, {}, files)


@pytest.fixture(scope="module")
def no_init_base(docker_client) -> Iterator[str]:  # type: ignore[no-untyped-def]
    tag = _image(docker_client, "nexlab-test/no-init:1", {"etc/passwd": b"root:x:0:0::/root:/bin/sh\n"})
    yield tag
    docker_client.images.remove(tag, force=True)


def test_detect_real_bases(docker_client, debian_base: str, alpine_base: str) -> None:  # type: ignore[no-untyped-def]
    debian = detect(docker_client, docker_client.images.get(debian_base), debian_base)
    assert debian.kind == InitKind.OPENRC and debian.openrc and debian.pid1 == "/sbin/init"
    alpine = detect(docker_client, docker_client.images.get(alpine_base), alpine_base)
    assert alpine.kind == InitKind.BUSYBOX and alpine.pid1 == "/bin/busybox" and not alpine.openrc
    assert not docker_client.containers.list(all=True, filters={"label": "org.nexlab.role=inspect"}), "removed"


def test_forced_inits_the_base_cannot_honour_are_refused(docker_client, alpine_base: str) -> None:  # type: ignore[no-untyped-def]
    found = detect(docker_client, docker_client.images.get(alpine_base), alpine_base)
    with pytest.raises(InputError, match="--init systemd, but PID 1"):
        choose(found, InitKind.SYSTEMD, alpine_base, "none")
    with pytest.raises(InputError, match="no network to install it"):
        choose(found, InitKind.OPENRC, alpine_base, "none")
    assert choose(found, InitKind.SYSVINIT, alpine_base, "none").kind == InitKind.SYSVINIT


def test_a_base_without_init_is_refused_before_anything_is_built(
    tmp_path: Path, no_init_base: str, docker_client: object, is_root: bool
) -> None:
    with pytest.raises(BaseImageError, match="looked for /sbin/init"):
        detect(docker_client, docker_client.images.get(no_init_base), no_init_base)  # type: ignore[attr-defined]
    out = tmp_path / "never.ext4"
    result = nexlab_cli("build", "--agent", str(SAMPLE_AGENT), "--image", no_init_base, "-o", str(out))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("nexlab")]
    assert len(errors) == 1 and "cannot find the init" in errors[0] and "/sbin/openrc-run" in errors[0]
    assert list(tmp_path.iterdir()) == [], "nothing was allocated"


def _derived(client, base: str, tag: str, command: str) -> str:  # type: ignore[no-untyped-def]
    """``base`` with ``command`` run in it, committed as ``tag`` (a real base with that shape)."""
    container = client.containers.run(base, ["/bin/sh", "-c", command], detach=True, network_mode="none")
    try:
        assert container.wait()["StatusCode"] == 0, container.logs()
        container.commit(*tag.split(":"))
    finally:
        container.remove(force=True)
    return tag


@pytest.mark.parametrize(
    ("shape", "command", "message"),
    [
        ("uid1000", "adduser -u 1000 -G users -D other", "uid 1000 is already user 'other'"),
        ("gid1000", "addgroup -g 1000 staff2", "gid 1000 is already group 'staff2'"),
        ("nex1001", "adduser -u 1001 -G users -D nex", "user nex is 1001:100"),
    ],
)
def test_ids_taken_in_the_base_are_refused_clearly(  # type: ignore[no-untyped-def]
    tmp_path: Path, docker_client, alpine_base: str, is_root: bool, shape: str, command: str, message: str
) -> None:
    tag = _derived(docker_client, alpine_base, f"nexlab-test/alpine:{shape}", command)
    try:
        with pytest.raises(ContainerFailedError, match=message):
            build_rootfs(tmp_path / "x.ext4", agent=SAMPLE_AGENT, image=tag, size="64MiB")
        assert not (tmp_path / "x.ext4").exists()
    finally:
        docker_client.images.remove(tag, force=True)


def test_the_build_fails_when_the_service_cannot_run(tmp_path: Path, alpine_base: str, is_root: bool) -> None:
    # An OpenRC script as the inittab wrapper: its interpreter is not in the image.
    service = tmp_path / "agent.openrc"
    service.write_text("#!/sbin/openrc-run\ncommand=/usr/local/bin/agent\n")
    out = tmp_path / "broken.ext4"
    with pytest.raises(AgentServiceError, match="openrc-run, which is not in the image"):
        build_rootfs(out, agent=SAMPLE_AGENT, image=alpine_base, size="64MiB", service=service)
    assert not out.exists(), "the unusable image is not left behind"
    result = nexlab_cli(
        "build", "--agent", str(SAMPLE_AGENT), "--image", alpine_base, "--size", "64MiB",
        "--service", str(service), "--reproducible", "-o", str(out),
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "agent cannot start" in result.stderr and not out.exists()


def test_cli_init_that_the_base_cannot_honour_is_one_line(tmp_path: Path, alpine_base: str, is_root: bool) -> None:
    out = tmp_path / "never.ext4"
    result = nexlab_cli(
        "build", "--agent", str(SAMPLE_AGENT), "--image", alpine_base, "--init", "systemd", "-o", str(out)
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "--init systemd, but PID 1" in errors[0] and "/bin/busybox" in errors[0]
    assert list(tmp_path.iterdir()) == []
    forced = nexlab_cli(
        "build", "--agent", str(SAMPLE_AGENT), "--image", alpine_base, "--init", "sysvinit", "--size", "64MiB",
        "-o", str(out),
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert "init: sysvinit (--init" in forced.stdout + forced.stderr


@pytest.mark.root
def test_the_mount_build_reads_the_init_through_its_own_setup_container(
    tmp_path: Path, docker_client, debian_base: str, sample_agent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import datetime
    import os

    import nexlab.builder.init
    import nexlab.builder.populate

    def no_second_container(*args: object) -> None:
        raise AssertionError("the mount build created a separate container to find the init")

    monkeypatch.setattr(nexlab.builder.init, "detect", no_second_container)
    monkeypatch.setattr(nexlab.builder.populate, "detect", no_second_container)
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    build_rootfs(tmp_path / "rootfs.ext4", agent=sample_agent, image=debian_base, size="200MiB")
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    ours = {"type": "container", "event": "create", "label": f"org.nexlab.pid={os.getpid()}"}
    created = list(docker_client.events(since=since, until=until, filters=ours, decode=True))
    assert len(created) == 1, created
    # setup.sh saw the init through /nexlab/env: OpenRC's service is in place and enabled.
    from nexlab.image import open_image

    with open_image(tmp_path / "rootfs.ext4") as fs:
        paths = {entry.path for entry in fs.walk()}
    assert "/etc/init.d/agent" in paths
    assert any(path.startswith("/etc/runlevels/") and path.endswith("/agent") for path in paths)


def _linked_image(client, tag: str, links: dict[str, str], files: dict[str, bytes]) -> str:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    client.api.import_image_from_data(buffer.getvalue(), repository=tag.split(":")[0], tag=tag.split(":")[1])
    return tag


def _detected(container, reference: str, root: Path | None = None) -> object:  # type: ignore[no-untyped-def]
    from nexlab.builder.init import detect_in

    try:
        return detect_in(container, reference, root=root)
    except BaseImageError as exc:
        return str(exc)


@pytest.mark.root
def test_the_host_lookup_answers_as_the_engine_and_never_leaves_the_image(  # type: ignore[no-untyped-def]
    tmp_path: Path, docker_client, debian_base: str, alpine_base: str, no_init_base: str
) -> None:
    from nexlab.builder.layers import image_root

    # On the host, where an absolute link from the image would lead: a sysvinit that must not be seen.
    canary = tmp_path / "init"
    canary.write_bytes(b"\x7fELF INIT_VERSION=sysvinit-3.06")
    crafted = _linked_image(
        docker_client,
        "nexlab-test/linked-init:1",
        {
            "sbin/init": str(canary),  # an absolute link to the host's canary
            "usr/sbin/init": "../../bin/../../../busybox-dangling",  # dangling, '..' stops at the root
            "sbin/openrc-run": str(canary),  # a link (dangling inside): the engine counts it as present
            "bin": "usr/bin",
        },
        {"usr/bin/busybox": b"BusyBox v1.36"},
    )
    merged = _linked_image(
        docker_client,
        "nexlab-test/merged-usr-init:1",
        {"sbin": "usr/sbin", "usr/sbin/init": "/lib/systemd/systemd", "lib": "usr/lib"},
        {"usr/lib/systemd/systemd": b"\x7fELF systemd"},
    )
    try:
        for reference in (debian_base, alpine_base, no_init_base, crafted, merged):
            container = docker_client.containers.create(reference, command=["/x"], network_mode="none")
            try:
                engine = _detected(container, reference)
                with image_root(container) as root:
                    host = _detected(container, reference, root)
                assert host == engine, reference
            finally:
                container.remove(force=True)
        assert canary.read_bytes().startswith(b"\x7fELF")
    finally:
        for tag in (crafted, merged):
            docker_client.images.remove(tag, force=True)


@pytest.mark.root
def test_the_build_falls_back_to_the_engine_for_the_init(  # type: ignore[no-untyped-def]
    tmp_path: Path, debian_base: str, sample_agent: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    import logging

    from nexlab.builder.layers import ENV
    from tests.recorder import Recorder

    caplog.set_level(logging.DEBUG, logger="nexlab.layers")
    fast, engine = Recorder(), Recorder()
    build_rootfs(tmp_path / "fast.ext4", agent=sample_agent, image=debian_base, size="200MiB", progress=fast)
    assert "the base's layers cannot be read here" not in caplog.text
    monkeypatch.setenv(ENV, "engine")
    build_rootfs(tmp_path / "engine.ext4", agent=sample_agent, image=debian_base, size="200MiB", progress=engine)
    assert "the base's layers cannot be read here" in caplog.text
    found = [[line for line in r.lines if line.startswith("init: ")] for r in (fast, engine)]
    assert found[0] == found[1] == ["init: openrc (PID 1 /sbin/init, OpenRC)"]
