"""populate() and build_rootfs() on the real Docker engine with real base images."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexlab import allocate, build_rootfs, mkfs, mount, populate, unmount
from nexlab.builder.mount import Mount
from nexlab.builder.output import sha256_file
from tests.conftest import nexlab_cli, scratch
from tests.recorder import Recorder


@pytest.fixture(scope="module")
def debian_rootfs(module_tmp: Path, debian_base: str, sample_agent: Path) -> Path:
    out = scratch(module_tmp, "debian") / "rootfs.ext4"
    build_rootfs(out, agent=sample_agent, image=debian_base, size="200MiB")
    return out


@pytest.fixture
def opened(debian_rootfs: Path) -> Iterator[Mount]:
    with mount(debian_rootfs, read_only=True) as mounted:
        yield mounted


def check_nex_layout(root: Path, agent: Path, init: str = "openrc") -> None:
    """What the Nex agent expects of its root filesystem (its service for the base's ``init``)."""
    from nexlab.builder.init import SERVICE_PATHS, InitKind

    agent_stat = os.lstat(root / "usr/local/bin/agent")
    assert (agent_stat.st_uid, agent_stat.st_gid, stat.S_IMODE(agent_stat.st_mode)) == (0, 0, 0o755)
    assert (root / "usr/local/bin/agent").read_bytes() == agent.read_bytes()
    service = os.lstat(root / SERVICE_PATHS[InitKind(init)].lstrip("/"))
    mode = 0o644 if init == "systemd" else 0o755
    assert (service.st_uid, stat.S_IMODE(service.st_mode)) == (0, mode), "root runs it: nex must not own it"
    if init == "openrc":
        assert os.readlink(root / "etc/runlevels/boot/agent") == "/etc/init.d/agent"
    home = os.lstat(root / "home/nex")
    assert (home.st_uid, home.st_gid) == (1000, 1000)
    assert stat.S_IMODE(os.lstat(root / "tmp").st_mode) == 0o1777
    for directory in ("dev", "proc", "run", "sys", "var", "tmp", "etc", "usr", "home"):
        assert (root / directory).is_dir(), directory
    passwd = (root / "etc/passwd").read_text()
    assert any(line.startswith("nex:x:1000:1000:") for line in passwd.splitlines())
    assert "ttyS0" in (root / "etc/securetty").read_text()
    assert os.readlink(root / "etc/resolv.conf") == "/proc/net/pnp"
    assert not (root / ".dockerenv").exists()
    shadow_root = next(line for line in (root / "etc/shadow").read_text().splitlines() if line.startswith("root:"))
    assert shadow_root.split(":")[1] in ("*", "!", "!*"), "no known root password"


def test_debian_build_has_everything_the_agent_needs(opened: Mount, sample_agent: Path) -> None:
    root = opened.path
    check_nex_layout(root, sample_agent)
    assert "ttyS0" in (root / "etc/inittab").read_text(), "sysvinit runs a getty on the serial console"
    assert (root / "var/lib/dpkg/status").is_file(), "the package database is kept"
    assert not any((root / "var/lib/apt/lists").glob("*_Packages")), "apt lists are dropped"
    assert (root / "sbin/openrc-run").exists() or (root / "usr/sbin/openrc-run").exists()


def test_steps_one_at_a_time_stream_the_container_log(
    tmp_path: Path, debian_base: str, sample_agent: Path, is_root: bool
) -> None:
    image = allocate(tmp_path / "rootfs.ext4", "200MiB").path
    mkfs(image)
    recorder = Recorder()
    with mount(image) as mounted:
        result = populate(mounted, agent=sample_agent, image=debian_base, progress=recorder)
        assert result.used_bytes > 50 * 2**20 and result.free_bytes > 0
        assert result.files > 1000
        check_nex_layout(mounted.path, sample_agent)
        done = unmount(mounted)
    assert done.fsck_clean
    assert any("nexlab-step: 5/6 finish" in line for line in recorder.lines), "container output streams live"
    assert recorder.fractions == sorted(recorder.fractions) and recorder.fractions[-1] == 1.0
    assert result.base_image_id.startswith("sha256:")
    assert "populate" in result._repr_html_() and "files" in str(result)


def test_alpine_build(tmp_path: Path, alpine_base: str, sample_agent: Path, is_root: bool) -> None:
    out = tmp_path / "alpine.ext4"
    recorder = Recorder()
    result = build_rootfs(out, agent=sample_agent, image=alpine_base, size="64MiB", progress=recorder)
    assert result.output == out and out.stat().st_size == 64 * 2**20
    # The mount path's plain output: its digest is computed when first read, of the file in place.
    assert not result.sha256_known
    assert result.sha256 == sha256_file(out) and result.sha256_known
    assert recorder.steps == ["allocate", "mkfs", "mount", "populate", "unmount"]
    assert any("init: busybox" in line for line in recorder.lines), "the init found is reported"
    with mount(out, read_only=True) as mounted:
        check_nex_layout(mounted.path, sample_agent, "busybox")
        inittab = (mounted.path / "etc/inittab").read_text()
        assert "ttyS0::respawn:" in inittab, "busybox init gets a serial getty"
        assert "::respawn:/usr/local/sbin/agent-service\n" in inittab, "and runs the agent's wrapper"
        assert "\n::wait:/sbin/openrc" not in inittab, "no OpenRC to run"
        assert (mounted.path / "lib/apk/db/installed").is_file()


def test_user_script_and_service_are_used(tmp_path: Path, debian_base: str, sample_agent: Path, is_root: bool) -> None:
    script = tmp_path / "extra.sh"
    script.write_text(
        "echo from-the-user-script\n"
        "mkdir -p /usr/share/workload /opt/workload\n"
        "echo 42 > /usr/share/workload/answer\n"
        "echo 43 > /opt/workload/answer\n"
    )
    service = tmp_path / "agent.openrc"
    service.write_text("#!/sbin/openrc-run\ncommand=/usr/local/bin/agent\n# custom service\n")
    out = tmp_path / "custom.ext4"
    recorder = Recorder()
    build_rootfs(
        out, agent=sample_agent, image=debian_base, size="200MiB", script=script, service=service, progress=recorder
    )
    assert "from-the-user-script" in recorder.lines
    with mount(out, read_only=True) as mounted:
        assert (mounted.path / "usr/share/workload/answer").read_text() == "42\n"
        assert (mounted.path / "etc/init.d/agent").read_text().endswith("# custom service\n")
        # The script runs in the container before the copy; /opt is not among nex's copied directories.
        assert not (mounted.path / "opt/workload/answer").exists()


def test_gz_output_is_gzipped_and_reproducible_as_a_stream(
    tmp_path: Path, debian_rootfs: Path, debian_base: str, sample_agent: Path
) -> None:
    out = tmp_path / "rootfs.ext4.gz"
    recorder = Recorder()
    result = build_rootfs(out, agent=sample_agent, image=debian_base, size="200MiB", progress=recorder)
    with gzip.open(out) as handle:
        head = handle.read(2048)
        plain = hashlib.sha256(head)
        while chunk := handle.read(2**20):
            plain.update(chunk)
    assert head[1080:1082] == b"\x53\xef", "ext magic inside the gzip stream"
    assert result.size == out.stat().st_size
    assert result.sha256 == sha256_file(out), "a compressed output's digest is of the compressed file"
    assert result.compressed_sha256 == result.sha256 and result.image_sha256 == plain.hexdigest()
    # gzip is a step of its own, listed with the others, with a bar in bytes.
    assert recorder.steps[-1] == "compress" and recorder.finished[-1] == "compress"
    assert [s.step for s in result.steps][-1] == "compress"
    assert "compress" in str(result) and "image sha256" in str(result)
    compressing = [(done, text) for step, done, text in recorder.bar if step == "compress"]
    assert compressing[-1][0] == 1.0 and any("of 200 MiB" in text for _, text in compressing)
    # The copy reports its bytes: the populate bar moves past the setup's share while copying.
    copying = [done for step, done, text in recorder.bar if step == "populate" and text.startswith("copy ")]
    assert len(set(copying)) >= 2 and all(0.4 <= d < 1.0 for d in copying), copying
    assert [p.name for p in tmp_path.iterdir()] == ["rootfs.ext4.gz"], "no temporary files left"


def test_existing_output_is_replaced_only_on_success(
    tmp_path: Path, debian_base: str, sample_agent: Path, is_root: bool
) -> None:
    out = tmp_path / "rootfs.ext4"
    out.write_bytes(b"previous build")
    failing = tmp_path / "fail.sh"
    failing.write_text("echo about to fail; exit 9\n")
    from nexlab.errors import ContainerFailedError

    with pytest.raises(ContainerFailedError, match="status 9"):
        build_rootfs(out, agent=sample_agent, image=debian_base, size="200MiB", script=failing)
    assert out.read_bytes() == b"previous build"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fail.sh", "rootfs.ext4"]
    # The image was made and mounted beside the setup (a fixed size): released with it.
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout
    assert str(tmp_path) not in loops
    result = build_rootfs(out, agent=sample_agent, image=debian_base, size="200MiB")
    assert out.stat().st_size == 200 * 2**20 and len(result.sha256) == 64
    assert "sha256" in result._repr_html_()


def test_a_setup_container_released_early_is_gone_once_its_block_ends(
    docker_client, debian_base: str, sample_agent: Path
) -> None:  # type: ignore[no-untyped-def]
    from nexlab.builder.container import created_setup, run_setup
    from nexlab.builder.populate import setup_inputs

    base = docker_client.images.get(debian_base)
    ids = []
    for fails in (False, True):
        with contextlib.suppress(RuntimeError), created_setup(docker_client, base, reference=debian_base) as created:
            finished = run_setup(created, setup_inputs(sample_agent, None, None), Recorder())
            ids.append(finished.container.id)
            # The build's way: removed in a thread once its filesystem was read, waited for at the end.
            created.release_early()
            created.release_early()  # once only
            if fails:
                raise RuntimeError("the rest of the build failed")
        assert not docker_client.containers.list(all=True, filters={"id": ids[-1]})


def test_a_plain_build_does_not_wait_for_the_digest_and_json_gives_it(
    tmp_path: Path, alpine_base: str, sample_agent: Path, is_root: bool
) -> None:
    out = tmp_path / "rootfs.ext4"
    inputs = ["--agent", str(sample_agent), "--image", alpine_base, "--size", "64MiB", "-o", str(out)]
    plain = nexlab_cli("build", "-q", *inputs)
    assert plain.returncode == 0, plain.stderr
    facts = dict(line.split(None, 1) for line in plain.stdout.splitlines()[1:])
    assert facts["output"] == str(out) and facts["size"] == "67108864 bytes (64.0 MiB)"
    assert facts["sha256"] == "not computed (nexlab build --json prints it)"
    built = nexlab_cli("build", "-q", "--json", *inputs)
    assert built.returncode == 0, built.stderr
    data = json.loads(built.stdout)
    assert data["sha256"] == data["image_sha256"] == sha256_file(out)
