"""--engine: which engine a name or URL means, and builds through a second, real dockerd on
loopback TCP (tests/engines/conftest.py) that give the local engine's bytes."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from pathlib import Path

import pytest

from nexlab.builder import engine
from nexlab.builder.many import build_many
from nexlab.builder.pipeline import build
from nexlab.builder.spec import BuildSpec
from nexlab.errors import DockerUnavailableError, InputError
from tests.conftest import nexlab_cli, scratch


def _context(config_dir: Path, name: str, host: str) -> None:
    """A docker context as the docker CLI writes it: contexts/meta/<sha256 of the name>/meta.json."""
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    document = {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}
    (meta / "meta.json").write_text(json.dumps(document))
    (config_dir / "config.json").write_text("{}")


def test_a_url_a_context_and_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    assert engine.resolve(None) == engine.Engine("")
    url = engine.resolve("tcp://10.0.0.7:2375")
    assert (url.base_url, url.tls) == ("tcp://10.0.0.7:2375", None)
    _context(tmp_path, "builders", "tcp://10.0.0.8:2375")
    named = engine.resolve("builders")
    assert (named.name, named.base_url, named.label) == ("builders", "tcp://10.0.0.8:2375", "builders")
    with pytest.raises(InputError, match=r"no docker context named nope \(known: builders"):
        engine.resolve("nope")


def test_tls_comes_from_the_environment_for_a_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("not really a certificate\n")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    tls = engine.resolve("tcp://builder.example:2376").tls
    assert tls is not None and not isinstance(tls, bool)
    assert (
        tls.verify is True
        and tls.ca_cert == str(tmp_path / "ca.pem")
        and tls.cert
        == (
            str(tmp_path / "cert.pem"),
            str(tmp_path / "key.pem"),
        )
    )


def test_only_a_unix_socket_is_local() -> None:
    import docker

    for url, local in (("unix:///var/run/docker.sock", True), ("tcp://127.0.0.1:2375", False)):
        client = docker.DockerClient(base_url=url, version="1.41")
        assert engine.is_local(client) is local, url
        client.close()


def test_an_unreachable_engine_is_one_line_naming_it() -> None:
    with pytest.raises(DockerUnavailableError, match=r"cannot reach the Docker engine tcp://127\.0\.0\.1:9 "):
        engine.connect("tcp://127.0.0.1:9", timeout=2)


def test_the_cli_refuses_an_unknown_context(tmp_path: Path, sample_agent: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    result = nexlab_cli(
        "build", "--reproducible", "--engine", "nowhere", "--agent", str(sample_agent), "-o", str(tmp_path / "x.ext4"),
        env={"DOCKER_CONFIG": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "no docker context named nowhere" in result.stderr


@pytest.fixture(scope="module")
def local_build(module_tmp: Path, pinned_base: str, sample_agent: Path) -> Path:
    out = scratch(module_tmp, "local") / "rootfs.ext4"
    build(BuildSpec.of(sample_agent, pinned_base, size="200MiB"), out, reproducible=True, cache=False)
    return out


@pytest.fixture(scope="session")
def pinned_base(docker_client, debian_base) -> str:  # type: ignore[no-untyped-def]
    return str(docker_client.images.get(debian_base).id)


def test_reproducible_through_the_second_engine_is_bit_identical(
    second_engine: str, local_build: Path, pinned_base: str, sample_agent: Path, tmp_path: Path
) -> None:
    import docker

    remote = docker.DockerClient(base_url=second_engine, version="1.41")
    since = int(time.time()) - 1
    out = tmp_path / "rootfs.ext4"
    spec = BuildSpec.of(sample_agent, pinned_base, size="200MiB", engine=second_engine)
    result = build(spec, out, reproducible=True, cache=False)
    # The setup container ran there, not here.
    events = remote.events(since=since, until=int(time.time()) + 1, decode=True, filters={"event": "create"})
    roles = [e.get("Actor", {}).get("Attributes", {}).get("org.nexlab.role") for e in events]
    remote.close()
    assert "populate" in roles
    assert out.read_bytes() == local_build.read_bytes()
    assert result.sha256 == hashlib.sha256(local_build.read_bytes()).hexdigest()
    local_manifest = local_build.with_name(local_build.name + ".manifest.json").read_text()
    assert out.with_name(out.name + ".manifest.json").read_text() == local_manifest


def test_the_mount_path_through_the_second_engine_uses_its_export(
    second_engine: str, pinned_base: str, sample_agent: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, is_root
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG, logger="nexlab.layers")
    spec = BuildSpec.of(sample_agent, pinned_base, size="200MiB", engine=second_engine)
    result = build(spec, tmp_path / "rootfs.ext4")  # raises unless the agent and its service are in place
    assert result.size == 200 * 2**20
    assert any("not on a local socket" in r.getMessage() for r in caplog.records)


def test_build_many_over_two_engines_goes_on_past_a_failure(
    second_engine: str, local_build: Path, docker_client, debian_base: str, sample_agent: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # A base only the local engine has: the second engine cannot pull it (no registry here).
    only_here = f"nexlab-test/only-local:{uuid.uuid4().hex[:8]}"
    docker_client.images.get(debian_base).tag(only_here)
    try:
        matrix = tmp_path / "matrix.toml"
        agent = tmp_path / "agent.sh"
        agent.write_bytes(sample_agent.read_bytes())
        matrix.write_text(
            f'agents = ["agent.sh"]\nbases = ["{debian_base}", "{only_here}"]\nengines = ["local", "{second_engine}"]\n'
            'size = "200MiB"\nper_engine = 2\noutput = "{name}.ext4"\n'
        )
        result = nexlab_cli("build-many", "-q", "--no-cache", str(matrix), timeout=900)
    finally:
        docker_client.images.remove(only_here)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:-1]}
    assert len(rows) == 4, result.stdout
    failed = [name for name, line in rows.items() if "FAILED" in line]
    assert len(failed) == 1 and second_engine.split("://")[1].replace(":", "_") in failed[0], result.stdout
    assert "only-local" in failed[0] and "not present locally and could not be pulled" in rows[failed[0]]
    assert result.stdout.splitlines()[-1].startswith("4 builds, 1 failed")
    # The same inputs (the tag is no input of the bytes) give one sha256 on either engine.
    want = hashlib.sha256(local_build.read_bytes()).hexdigest()
    built = [p for p in tmp_path.glob("*.ext4")]
    assert len(built) == 3 and all(hashlib.sha256(p.read_bytes()).hexdigest() == want for p in built)
    assert all(want in line for name, line in rows.items() if name not in failed)


def test_build_many_api_spreads_specs_over_the_pool(
    second_engine: str, local_build: Path, pinned_base: str, sample_agent: Path, tmp_path: Path
) -> None:
    agents = []
    for index in range(2):
        agent = tmp_path / f"agent{index}.sh"
        agent.write_bytes(sample_agent.read_bytes() + f"# {index}\n".encode())
        agents.append(agent)
    specs = [BuildSpec.of(agent, pinned_base, size="200MiB") for agent in agents]
    result = build_many(specs, engines=[None, second_engine], per_engine=1, cache=False, output_dir=tmp_path)
    assert result.ok, result.table()
    # One slot per engine and two builds: each engine ran one.
    assert (
        sorted(r.engine for r in result.results) == sorted(["local", second_engine])
        or len({r.engine for r in result.results}) == 2
    ), result.table()
    assert len({r.sha256 for r in result.results}) == 2  # other agents, other bytes
    assert "name" in result.table().splitlines()[0] and "2 builds, 0 failed" in result.table()
