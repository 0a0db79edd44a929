"""The after-build service check on the mounted tree says what the check on the image file says,
and never follows a link from the image to the host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nexlab.audit.findings import Facts
from nexlab.builder.init import InitKind
from nexlab.builder.mount import mount
from nexlab.builder.pipeline import build_rootfs
from nexlab.builder.service_check import MountedRecords, _evaluate, check_service, service_problem, tree_records
from nexlab.errors import AgentServiceError
from nexlab.image import open_image
from tests.conftest import SAMPLE_AGENT


@pytest.mark.docker
@pytest.mark.root
def test_tree_and_image_checks_agree(tmp_path: Path, alpine_base: str, is_root: bool) -> None:
    good = tmp_path / "good.ext4"
    build_rootfs(good, agent=SAMPLE_AGENT, image=alpine_base, size="64MiB")
    # The same image with the inittab wrapper replaced by an OpenRC script (whose interpreter is missing).
    broken = tmp_path / "broken.ext4"
    broken.write_bytes(good.read_bytes())
    check_service(good, InitKind.BUSYBOX)
    with mount(broken) as mounted:
        assert service_problem(mounted.path, InitKind.BUSYBOX) is None
        with open_image(good) as fs:
            from_image = {e.path: (e.type, e.mode & 0o7777, e.uid, e.gid) for e in fs.walk()}
        from_tree = {p: (r.type, r.mode, r.uid, r.gid) for p, r in tree_records(mounted.path).items()}
        assert from_tree == from_image, "the tree's records are the image's"
        _assert_same_as_the_walk(mounted.path)
        wrapper = mounted.path / "usr/local/sbin/agent-service"
        wrapper.write_text("#!/sbin/openrc-run\ncommand=/usr/local/bin/agent\n")
        problem = service_problem(mounted.path, InitKind.BUSYBOX)
    with pytest.raises(AgentServiceError) as from_file:
        check_service(broken, InitKind.BUSYBOX)
    assert problem is not None and "openrc-run, which is not in the image" in str(problem)
    assert (str(problem), problem.hint) == (str(from_file.value), from_file.value.hint)


def test_a_link_to_the_host_is_not_followed(tmp_path: Path) -> None:
    # A tree whose agent and inittab are links to canaries on the host that would pass the check.
    canary = tmp_path / "host"
    (canary / "bin").mkdir(parents=True)
    host_agent = canary / "bin" / "agent"
    host_agent.write_text("#!/bin/sh\n")
    host_agent.chmod(0o755)
    host_inittab = canary / "inittab"
    host_inittab.write_text("::respawn:/usr/local/bin/agent\n")
    root = tmp_path / "root"
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "bin").mkdir()
    (root / "bin/busybox").write_bytes(b"\x7fELF BusyBox v1.36")
    (root / "sbin").mkdir()
    (root / "sbin/init").symlink_to("/bin/busybox")
    os.symlink(host_agent, root / "usr/local/bin/agent")
    os.symlink(host_inittab, root / "etc/inittab")
    problem = service_problem(root, InitKind.BUSYBOX)
    assert problem is not None
    assert "/usr/local/bin/agent does not exist" in str(problem), problem
    assert host_agent.read_text() == "#!/bin/sh\n" and host_inittab.read_text().startswith("::respawn")


def _assert_same_as_the_walk(root: Path) -> None:
    """``MountedRecords`` answers every lookup, ``under`` and the rules as the whole walk does."""
    walked = tree_records(root)
    lazy = MountedRecords(root)
    for path, record in walked.items():
        assert lazy[path] == record, path
        assert lazy.node(path) == (record.type, record.target)
    for absent in ("/nope", "/etc/nope/x", "/etc/passwd/x", "relative", "/etc/../etc/passwd"):
        assert absent not in lazy and lazy.get(absent) is None
    for prefix in ("/etc/runlevels/", "/etc/systemd/system/", "/etc/local.d/", "/etc/init.d/", "/nope/"):
        expected = sorted((p, r) for p, r in walked.items() if p.startswith(prefix))
        assert sorted(Facts(records=MountedRecords(root), read=lambda _: None).under(prefix)) == expected, prefix

    def findings(records: object) -> list[tuple[str, str]]:
        found = _evaluate(records, lambda path: None)  # type: ignore[arg-type]
        return [(f.code, f.message) for f in found]

    assert findings(MountedRecords(root)) == findings(walked)
    assert sorted(lazy) == sorted(walked) and len(lazy) == len(walked)  # iterating walks it all


def test_mounted_records_answer_as_the_walk_does(tmp_path: Path) -> None:
    """An OpenRC tree with the shapes the rules meet: runlevel links, a service script, a
    directory reached through a link inside the image, and links out to the host."""
    host = tmp_path / "host"
    (host / "runlevels/boot").mkdir(parents=True)
    (host / "runlevels/boot/agent").symlink_to("/etc/init.d/agent")
    root = tmp_path / "root"
    for directory in ("etc/init.d", "etc/runlevels/default", "etc/runlevels/boot", "usr/local/bin", "usr/lib", "sbin"):
        (root / directory).mkdir(parents=True)
    (root / "etc/init.d/agent").write_text("#!/sbin/openrc-run\ncommand=/usr/local/bin/agent\n")
    (root / "etc/runlevels/boot/agent").symlink_to("/etc/init.d/agent")
    (root / "etc/runlevels/default/agetty.ttyS0").symlink_to("/etc/init.d/agetty.ttyS0")
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nnex:x:1000:1000::/home/nex:/bin/sh\n")
    (root / "usr/local/bin/agent").write_text("#!/bin/sh\n")
    (root / "usr/local/bin/agent").chmod(0o755)
    (root / "usr/lib/openrc-run").write_text("#!/bin/sh\n")
    (root / "sbin/openrc-run").symlink_to("../usr/lib/openrc-run")
    (root / "lib").symlink_to("usr/lib")  # merged /usr
    (root / "etc/local.d").symlink_to(host / "runlevels")  # out of the image: never walked
    (root / "etc/systemd").symlink_to(host)
    _assert_same_as_the_walk(root)
    lazy = MountedRecords(root)
    assert lazy["/etc/local.d"].type == "symlink" and "/etc/local.d/boot" not in lazy
    assert list(Facts(records=lazy, read=lambda _: None).under("/etc/local.d/")) == []
