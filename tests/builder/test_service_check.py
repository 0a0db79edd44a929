"""The after-build service check on the mounted tree says what the check on the image file says,
and never follows a link from the image to the host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nexlab.builder.init import InitKind
from nexlab.builder.mount import mount
from nexlab.builder.pipeline import build_rootfs
from nexlab.builder.service_check import check_service, service_problem, tree_records
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
