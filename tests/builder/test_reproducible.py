"""``nexlab build --reproducible``: real Docker builds, twice, compared byte for byte."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexlab.builder.manifest import BuildManifest, manifest_path
from nexlab.builder.normalize import clamp_times, scrub
from nexlab.builder.reproducible import build_reproducible
from nexlab.builder.spec import BuildSpec
from nexlab.errors import InputError
from tests.conftest import nexlab_cli

EPOCH = 1_700_000_000  # 2023-11-14, day 19675


def _build_in(directory: Path, agent: Path, image: str, *, umask: int, tz: str, epoch: int | None = None) -> Path:
    """One build with this process's umask and TZ changed, the way a user's shell would."""
    directory.mkdir(parents=True)
    saved_umask, saved_tz, saved_cwd = os.umask(umask), os.environ.get("TZ"), os.getcwd()
    os.environ["TZ"] = tz
    time.tzset()
    os.chdir(directory)
    try:
        spec = BuildSpec.of(agent, image, size="200MiB", source_date_epoch=epoch)
        result = build_reproducible(spec, directory / "rootfs.ext4")
    finally:
        os.chdir(saved_cwd)
        os.umask(saved_umask)
        if saved_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved_tz
        time.tzset()
    assert result.reproducible and result.manifest == manifest_path(result.output)
    return result.output


@pytest.fixture(scope="session")
def sample_agent() -> Iterator[Path]:
    """A private copy of the sample agent: the builds compared here must not see an edit made
    to the repository's copy meanwhile. World-readable, for the build run as nobody."""
    import shutil
    import tempfile

    from tests.conftest import SAMPLE_AGENT

    directory = Path(tempfile.mkdtemp(prefix="nexlab-agent-"))
    os.chmod(directory, 0o755)
    agent = directory / "agent.sh"
    shutil.copyfile(SAMPLE_AGENT, agent)
    os.chmod(agent, 0o755)
    yield agent
    shutil.rmtree(directory)


@pytest.fixture(scope="session")
def pinned_base(docker_client, debian_base) -> str:  # type: ignore[no-untyped-def]
    """The base by image ID: other tests may re-import the tag while these builds run."""
    return str(docker_client.images.get(debian_base).id)


@pytest.fixture(scope="session")
def two_builds(tmp_path_factory, pinned_base, sample_agent) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """The same inputs built twice: other directory, umask, TZ, and at least a second later."""
    root = tmp_path_factory.mktemp("repro")
    first = _build_in(root / "one", sample_agent, pinned_base, umask=0o022, tz="UTC")
    time.sleep(1.1)
    second = _build_in(root / "a" / "much" / "deeper" / "two", sample_agent, pinned_base, umask=0o077, tz="Asia/Tokyo")
    return first, second


@pytest.mark.docker
def test_two_builds_are_bit_identical(two_builds: tuple[Path, Path]) -> None:
    first, second = two_builds
    one = BuildManifest.read(manifest_path(first))
    two = BuildManifest.read(manifest_path(second))
    assert one == two
    assert first.read_bytes() == second.read_bytes()
    assert one.image_sha256 == __import__("hashlib").sha256(first.read_bytes()).hexdigest()
    assert one.e2fsprogs.startswith("1.")
    assert one.epoch_source == "base image creation time"


@pytest.mark.docker
def test_a_gz_output_records_the_image_and_the_artifact_digests(
    two_builds: tuple[Path, Path], tmp_path: Path, pinned_base: str, sample_agent: Path
) -> None:
    import hashlib

    spec = BuildSpec.of(sample_agent, pinned_base, size="200MiB")
    result = build_reproducible(spec, tmp_path / "rootfs.ext4.gz")
    recorded = BuildManifest.read(manifest_path(result.output))
    plain = BuildManifest.read(manifest_path(two_builds[0]))
    # The same inputs: the image inside the .gz is the uncompressed build's, byte for byte.
    assert recorded.image_sha256 == plain.image_sha256 == result.image_sha256
    assert recorded.compressed_sha256 == result.compressed_sha256 == result.sha256
    assert result.sha256 == hashlib.sha256(result.output.read_bytes()).hexdigest()
    assert plain.compressed_sha256 is None and recorded.version == 3
    assert [s.step for s in result.steps][-1] == "compress"


@pytest.mark.docker
def test_image_is_clean_and_scrubbed(two_builds: tuple[Path, Path]) -> None:
    from nexlab.image import open_image
    from nexlab.run import run

    image, _ = two_builds
    assert run(["e2fsck", "-fn", str(image)], check=False).returncode == 0
    manifest = BuildManifest.read(manifest_path(image))
    epoch = manifest.source_date_epoch
    with open_image(image) as fs:
        assert fs.info.uuid == manifest.uuid
        assert fs.info.hash_seed == manifest.hash_seed
        assert fs.info.created == epoch and fs.info.last_write == epoch
        entries = list(fs.walk())
        assert len(entries) > 5000
        assert max(e.mtime for e in entries) <= epoch
        assert {e.ctime for e in entries} == {epoch}
        assert {e.atime for e in entries} == {epoch}
        paths = {e.path for e in entries}
        for gone in ("/.dockerenv", "/var/log/dpkg.log", "/var/cache/ldconfig/aux-cache", "/var/lib/dpkg/status-old"):
            assert gone not in paths
        shadow = fs.read_path("/etc/shadow")
        assert shadow is not None
        days = {int(line.split(b":")[2]) for line in shadow.splitlines() if line.split(b":")[2]}
        assert max(days) <= epoch // 86400
        agent = fs.lookup("/usr/local/bin/agent")
        assert agent is not None and (agent.uid, agent.gid, agent.mode) == (0, 0, 0o755)
        root = fs.lookup("/")
        assert root is not None and root.mode == 0o755  # not the staging dir's 0700 under umask 077


@pytest.mark.docker
def test_another_epoch_gives_another_image(tmp_path: Path, pinned_base: str, sample_agent: Path, two_builds) -> None:  # type: ignore[no-untyped-def]
    other = _build_in(tmp_path / "epoch", sample_agent, pinned_base, umask=0o022, tz="UTC", epoch=EPOCH)
    manifest = BuildManifest.read(manifest_path(other))
    assert manifest.source_date_epoch == EPOCH and manifest.epoch_source == "given"
    assert manifest.uuid != BuildManifest.read(manifest_path(two_builds[0])).uuid
    assert other.read_bytes() != two_builds[0].read_bytes()


@pytest.mark.docker
def test_cli_reproducible_twice(tmp_path: Path, pinned_base: str, sample_agent: Path) -> None:
    outputs = []
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
        out = tmp_path / name / "rootfs.ext4"
        result = nexlab_cli(
            "build", "--reproducible", "--source-date-epoch", str(EPOCH), "--agent", str(sample_agent),
            "--image", pinned_base, "--size", "200MiB", "-o", str(out), "-q",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "reproducible (mkfs.ext4 -d)" in result.stdout
        outputs.append(out)
    # Same inputs first (a clearer failure if a shared input, e.g. setup.sh, changed meanwhile).
    inputs = [json.loads(manifest_path(out).read_text()) for out in outputs]
    for data in inputs:
        data.pop("image_sha256")
    assert inputs[0] == inputs[1]
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    manifest = json.loads(manifest_path(outputs[0]).read_text())
    assert manifest["source_date_epoch"] == EPOCH
    assert list(manifest) == sorted(manifest)


def test_cli_rejects_bad_epoch(tmp_path: Path, sample_agent: Path) -> None:
    result = nexlab_cli(
        "build", "--reproducible", "--source-date-epoch", "yesterday", "--agent", str(sample_agent),
        "-o", str(tmp_path / "x.ext4"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "yesterday" in result.stderr
    env_result = nexlab_cli(
        "build", "--reproducible", "--agent", str(sample_agent), "-o", str(tmp_path / "x.ext4"),
        env={"SOURCE_DATE_EPOCH": "-5"},
    )  # fmt: skip
    assert env_result.returncode == 2
    assert len(env_result.stderr.strip().splitlines()) == 1
    assert "SOURCE_DATE_EPOCH" in env_result.stderr
    zero = nexlab_cli(
        "build", "--reproducible", "--source-date-epoch", "0", "--agent", str(sample_agent),
        "-o", str(tmp_path / "x.ext4"),
    )  # fmt: skip
    assert zero.returncode == 2 and "Traceback" not in zero.stderr
    assert "epoch 0 cannot be reproduced" in zero.stderr and "--source-date-epoch 1" in zero.stderr
    assert not list(tmp_path.iterdir())


def test_help_says_no_mount_privileges() -> None:
    result = nexlab_cli("build", "--help")
    text = " ".join(result.stdout.split())
    assert "--reproducible" in text and "without mount privileges" in text and "Docker" in text


def test_library_rejects_negative_epoch(tmp_path: Path, sample_agent: Path) -> None:
    with pytest.raises(InputError, match="negative"):
        build_reproducible(BuildSpec.of(sample_agent, source_date_epoch=-1), tmp_path / "x.ext4")


# -- normalize, on real trees --------------------------------------------------------------


def _tree(root: Path) -> None:
    for relative, content in {
        ".dockerenv": b"",
        "etc/ssh/ssh_host_ed25519_key": b"secret",
        "etc/ssh/ssh_host_ed25519_key.pub": b"public",
        "etc/ssh/sshd_config": b"keep me",
        "etc/machine-id": b"0123456789abcdef0123456789abcdef\n",
        "etc/shadow": b"root:*:20782:0:99999:7:::\nnex:!:19000:0:99999:7:::\nbad-line\n",
        "etc/passwd-": b"old",
        "var/log/dpkg.log": b"log",
        "var/log/apt/history.log": b"log",
        "var/cache/ldconfig/aux-cache": b"cache",
        "var/lib/dpkg/status-old": b"old",
        "var/lib/dpkg/status": b"keep",
        "usr/lib/python3/x.pyc": b"pyc",
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    os.chmod(root / "etc/shadow", 0o640)


def test_scrub_removes_volatile_files_and_pins_times(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _tree(root)
    result = scrub(root, EPOCH)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames, ""]:
            assert os.lstat(os.path.join(dirpath, name) if name else dirpath).st_mtime == EPOCH
        # Listing a directory moves its atime again (relatime), which is why the build
        # pins atimes in the image with debugfs; files are not read here.
        for name in filenames:
            assert os.lstat(os.path.join(dirpath, name)).st_atime == EPOCH
    assert set(result.removed) == {
        ".dockerenv",
        "etc/ssh/ssh_host_ed25519_key",
        "etc/ssh/ssh_host_ed25519_key.pub",
        "etc/passwd-",
        "var/log/dpkg.log",
        "var/log/apt/history.log",
        "var/cache/ldconfig/aux-cache",
        "var/lib/dpkg/status-old",
    }
    for gone in result.removed:
        assert not (root / gone).exists()
    assert (root / "etc/ssh/sshd_config").read_bytes() == b"keep me"
    assert (root / "var/lib/dpkg/status").read_bytes() == b"keep"
    assert (root / "usr/lib/python3/x.pyc").exists()  # .pyc are kept, their mtimes clamped
    assert (root / "etc/machine-id").read_bytes() == b""
    shadow = (root / "etc/shadow").read_text().splitlines()
    assert shadow == ["root:*:19675:0:99999:7:::", "nex:!:19000:0:99999:7:::", "bad-line"]
    assert (root / "etc/shadow").stat().st_mode & 0o7777 == 0o640
    assert result.shadow_lines == 1


def test_scrub_never_follows_a_symlink_to_the_host(tmp_path: Path) -> None:
    host = tmp_path / "host"
    (host / "ssh").mkdir(parents=True)
    precious = host / "ssh" / "ssh_host_rsa_key"
    precious.write_bytes(b"the host's key")
    (host / "machine-id").write_bytes(b"host-id\n")
    old = 1_000_000_000
    os.utime(precious, (old, old))
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "ssh").symlink_to(host / "ssh")  # an image's absolute link is the host's path here
    (root / "etc" / "machine-id").symlink_to(host / "machine-id")
    (root / "var" / "log").mkdir(parents=True)
    (root / "var" / "log" / "dpkg.log").symlink_to(host / "ssh" / "ssh_host_rsa_key")
    result = scrub(root, EPOCH + 10**9)
    assert precious.read_bytes() == b"the host's key" and precious.stat().st_mtime == old
    assert (host / "machine-id").read_bytes() == b"host-id\n"
    assert "var/log/dpkg.log" in result.removed  # the link itself goes
    assert (root / "etc" / "ssh").is_symlink()


def test_clamp_keeps_older_times(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(b"")
    new.write_bytes(b"")
    os.utime(old, (5, 1000))
    clamped, seen = clamp_times(tmp_path, 2000)
    assert (os.lstat(old).st_mtime, os.lstat(old).st_atime) == (1000, 1000)
    assert os.lstat(new).st_mtime == 2000
    assert seen == 3 and clamped == 2  # new and the directory itself


def test_manifest_round_trip(tmp_path: Path) -> None:
    manifest = BuildManifest(
        base_image="b", base_image_id="sha256:1", base_image_digest="sha256:1", agent_sha256="a",
        script_sha256=None, service_sha256="s", setup_sha256="u", e2fsprogs="1.47.0",
        source_date_epoch=EPOCH, epoch_source="given", size=1, network="none", uuid="u", hash_seed="h",
        image_sha256="i",
    )  # fmt: skip
    path = manifest.write(tmp_path / "m.json")
    assert BuildManifest.read(path) == manifest
    assert list(json.loads(path.read_text())) == sorted(json.loads(path.read_text()))
    with pytest.raises(InputError):
        BuildManifest.from_json('{"version": 1}')


@pytest.mark.docker
def test_normal_user_gets_the_same_bytes(two_builds: tuple[Path, Path], pinned_base: str, sample_agent: Path) -> None:
    """As nobody (with access to the Docker socket only): the volume path, bit-identical to root's."""
    from tests.nobody import nexlab_as_nobody, nobody_directory

    with nobody_directory() as outdir:
        output = outdir / "rootfs.ext4"
        result = nexlab_as_nobody(
            outdir, "build", "--reproducible", "--agent", str(sample_agent), "--image", pinned_base,
            "--size", "200MiB", "-o", str(output), "-q",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert output.stat().st_uid == 65534
        assert BuildManifest.read(manifest_path(output)) == BuildManifest.read(manifest_path(two_builds[0]))
        assert output.read_bytes() == two_builds[0].read_bytes()


# -- the normal user's path: extraction of the engine's tar stream ---------------------------


def _tar(members: list[tuple[str, bytes | None, dict[str, object]]]) -> io.BytesIO:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, attrs in members:
            info = tarfile.TarInfo(name)
            for key, value in attrs.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buffer.seek(0)
    return buffer


def test_extract_records_owners_and_modes(tmp_path: Path) -> None:
    import tarfile

    from nexlab.builder.extract import extract

    stream = _tar(
        [
            ("etc", None, {"type": tarfile.DIRTYPE, "mode": 0o755, "mtime": 200}),
            ("etc/shadow", b"root:*:1:::::\n", {"mode": 0o640, "gid": 42, "mtime": 300}),
            ("bin", None, {"type": tarfile.DIRTYPE, "mode": 0o755, "mtime": 400}),
            ("bin/su", b"\x7fELF", {"mode": 0o4755, "mtime": 500}),
            ("bin/su2", None, {"type": tarfile.LNKTYPE, "linkname": "bin/su"}),
            ("etc/resolv.conf", None, {"type": tarfile.SYMTYPE, "linkname": "/etc/elsewhere", "mtime": 600}),
            ("etc/motd", None, {"type": tarfile.SYMTYPE, "linkname": "/proc/net/pnp", "mtime": 600}),
            ("home", None, {"type": tarfile.DIRTYPE, "mode": 0o750, "uid": 1000, "gid": 1000, "mtime": 700}),
        ]
    )
    owners = extract([stream.getvalue()], tmp_path, as_root=False).owners
    assert owners is not None
    assert owners["/etc/shadow"].gid == 42 and owners["/etc/shadow"].mode == 0o640
    assert owners["/bin/su"].mode == 0o4755 and owners["/home"].uid == 1000
    assert "/" not in owners
    assert (tmp_path / "bin" / "su").stat().st_mode & 0o7777 == 0o755  # no setuid bit on the host
    assert (tmp_path / "bin" / "su").stat().st_ino == (tmp_path / "bin" / "su2").stat().st_ino
    assert os.readlink(tmp_path / "etc" / "motd") == "/proc/net/pnp"
    assert os.lstat(tmp_path / "etc" / "motd").st_mtime == 600
    # The engine's resolv.conf is not the guest's: the finish step's link replaces it.
    assert os.readlink(tmp_path / "etc" / "resolv.conf") == "/proc/net/pnp"
    assert (tmp_path / "etc").stat().st_mtime == 200 and (tmp_path / "home").stat().st_mtime == 700
    assert (tmp_path / "tmp").is_dir() and owners["/tmp"].mode == 0o1777


@pytest.mark.parametrize(
    "name, attrs, message",
    [
        ("etc/../../escape", {}, "cannot extract"),
        ("etc/link/owned", {}, "cannot extract"),
        ("etc/dev-null", {"type": b"3", "devmajor": 1, "devminor": 3}, "device node"),
    ],
)
def test_extract_refuses_hostile_members(tmp_path: Path, name: str, attrs: dict[str, object], message: str) -> None:
    import tarfile

    from nexlab.builder.extract import extract

    staging, outside = tmp_path / "staging", tmp_path / "outside"
    staging.mkdir()
    outside.mkdir()
    stream = _tar(
        [
            ("etc", None, {"type": tarfile.DIRTYPE, "mode": 0o755}),
            ("etc/link", None, {"type": tarfile.SYMTYPE, "linkname": str(outside)}),
            (name, None if attrs else b"x", attrs),
        ]
    )
    with pytest.raises(InputError, match=message):
        extract([stream.getvalue()], staging, as_root=False)
    assert list(outside.iterdir()) == [] and not (tmp_path / "escape").exists()


@pytest.mark.parametrize("name", ["elsewhere/file", "/etc/absolute", "nexlab/setup.sh", "dev/sda", "var/log/dpkg.log"])
def test_extract_leaves_out_what_the_image_does_not_keep(tmp_path: Path, name: str) -> None:
    import tarfile

    from nexlab.builder.extract import extract

    staging = tmp_path / "staging"
    staging.mkdir()
    stream = _tar(
        [
            ("var", None, {"type": tarfile.DIRTYPE, "mode": 0o755}),
            ("var/log", None, {"type": tarfile.DIRTYPE, "mode": 0o755}),
            (name, b"x", {}),
        ]
    )
    extracted = extract([stream.getvalue()], staging, as_root=False)
    assert not (staging / name.lstrip("/")).exists() and not (tmp_path / name.lstrip("/")).exists()
    assert (staging / "var" / "log").is_dir()
    assert extracted.owners is not None and "/" + name.lstrip("/") not in extracted.owners
