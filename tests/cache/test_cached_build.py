"""Agent-only rebuilds from the cache: the bytes of a clean --reproducible build, and a damaged
entry (truncated, a flipped byte, a partial one) rebuilt, never used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nexlab.builder.pipeline import build
from nexlab.builder.reproducible.results import CacheResult
from nexlab.builder.results import BuildResult
from nexlab.builder.spec import BuildSpec
from nexlab.cache import Cache
from nexlab.cache.store import TEMPORARY
from nexlab.image import open_image
from tests.conftest import scratch


@pytest.fixture(scope="module")
def pinned_base(docker_client, debian_base) -> str:  # type: ignore[no-untyped-def]
    return str(docker_client.images.get(debian_base).id)


@pytest.fixture(scope="module")
def agents(module_tmp: Path, sample_agent: Path) -> tuple[Path, Path]:
    directory = scratch(module_tmp, "agents")
    first, second = directory / "agent-a.sh", directory / "agent-b.sh"
    first.write_bytes(sample_agent.read_bytes())
    second.write_bytes(sample_agent.read_bytes() + b"# another release of the agent\n" * 300)
    for agent in (first, second):
        os.chmod(agent, 0o755)
    return first, second


def _spec(agent: Path, base: str) -> BuildSpec:
    return BuildSpec.of(agent, base, size="200MiB")


def _cache_step(result: BuildResult) -> CacheResult | None:
    return next((s for s in result.steps if isinstance(s, CacheResult)), None)


@pytest.fixture(scope="module")
def clean_b(module_tmp: Path, pinned_base: str, agents: tuple[Path, Path]) -> Path:
    """Agent B built without any cache: what every cached build of B must equal."""
    out = scratch(module_tmp, "clean") / "b.ext4"
    result = build(_spec(agents[1], pinned_base), out, reproducible=True, cache=False)
    assert _cache_step(result) is None
    return out


@pytest.fixture
def seeded(tmp_path: Path, pinned_base: str, agents: tuple[Path, Path]) -> Cache:
    """A cache holding one entry, made by a clean build of agent A."""
    cache = Cache(tmp_path / "cache")
    result = build(_spec(agents[0], pinned_base), tmp_path / "a.ext4", reproducible=True, cache=cache)
    step = _cache_step(result)
    assert step is not None and not step.hit and len(cache.entries()) == 1
    return cache


def _rebuild_b(cache: Cache, tmp_path: Path, base: str, agent: Path) -> BuildResult:
    return build(_spec(agent, base), tmp_path / "b-cached.ext4", reproducible=True, cache=cache)


def test_an_agent_only_rebuild_is_bit_identical_to_a_clean_build(
    seeded: Cache, tmp_path: Path, pinned_base: str, agents: tuple[Path, Path], clean_b: Path
) -> None:
    result = _rebuild_b(seeded, tmp_path, pinned_base, agents[1])
    step = _cache_step(result)
    assert step is not None and step.hit
    assert [s.step for s in result.steps] == ["cache", "agent"]  # no container, no mkfs
    assert result.output.read_bytes() == clean_b.read_bytes()
    manifest = clean_b.with_name(clean_b.name + ".manifest.json").read_text()
    assert result.manifest is not None and result.manifest.read_text() == manifest
    with open_image(result.output) as fs:
        agent = fs.lookup("/usr/local/bin/agent")
        assert agent is not None and (agent.uid, agent.gid, agent.mode) == (0, 0, 0o755)
        assert fs.read_bytes(agent) == agents[1].read_bytes()


def test_the_agent_is_not_part_of_the_key_but_the_rest_is(pinned_base: str, agents: tuple[Path, Path]) -> None:
    from nexlab.builder.reproducible.cached import key_of

    key = key_of(_spec(agents[0], pinned_base), pinned_base, "1.47.0")
    assert key_of(_spec(agents[1], pinned_base), pinned_base, "1.47.0") == key
    assert key_of(BuildSpec.of(agents[0], pinned_base, size=200 * 2**20), pinned_base, "1.47.0") == key
    assert key_of(BuildSpec.of(agents[1], pinned_base, size="200MiB", engine="tcp://x:1"), pinned_base, "1.47.0") == key
    assert key_of(BuildSpec.of(agents[0], pinned_base, size="300MiB"), pinned_base, "1.47.0") != key
    assert key_of(BuildSpec.of(agents[0], pinned_base, size="200MiB", script=agents[1]), pinned_base, "1.47.0") != key
    assert key_of(_spec(agents[0], pinned_base), "sha256:" + "0" * 64, "1.47.0") != key
    assert key_of(_spec(agents[0], pinned_base), pinned_base, "1.47.1") != key


@pytest.mark.parametrize("damage", ["truncate", "flip", "records"])
def test_a_damaged_entry_is_rebuilt_never_used(
    damage: str, seeded: Cache, tmp_path: Path, pinned_base: str, agents: tuple[Path, Path], clean_b: Path
) -> None:
    (entry,) = seeded.entries()
    if damage == "truncate":
        os.truncate(entry.image, entry.image.stat().st_size // 2)
    elif damage == "records":  # the service check's records, kept beside entry.json
        records = entry.directory / "records.json"
        records.write_bytes(records.read_bytes().replace(b'"/etc"', b'"/etc/"', 1))
    else:
        with open(entry.image, "r+b") as handle:  # a byte of the superblock, the size unchanged
            handle.seek(1024 + 200)
            byte = handle.read(1)
            handle.seek(1024 + 200)
            handle.write(bytes([byte[0] ^ 0x5A]))
    result = _rebuild_b(seeded, tmp_path, pinned_base, agents[1])
    assert "stage" in [s.step for s in result.steps]  # from scratch
    assert result.output.read_bytes() == clean_b.read_bytes()
    # ... and the entry made anew is whole: the next rebuild uses it.
    again = build(_spec(agents[1], pinned_base), tmp_path / "again.ext4", reproducible=True, cache=seeded)
    step = _cache_step(again)
    assert step is not None and step.hit and again.sha256 == result.sha256


def test_a_partial_entry_is_never_used(
    tmp_path: Path, pinned_base: str, agents: tuple[Path, Path], clean_b: Path, seeded: Cache
) -> None:
    (entry,) = seeded.entries()
    # A build killed while storing: the temporary of a dead writer, and no entry under the key.
    partial = seeded.entries_dir / f".{entry.key[:16]}.nx999999999-0badc0de{TEMPORARY}"
    entry.directory.rename(partial)
    result = _rebuild_b(seeded, tmp_path, pinned_base, agents[1])
    assert "stage" in [s.step for s in result.steps]
    assert result.output.read_bytes() == clean_b.read_bytes()
    assert not partial.exists() and len(seeded.entries()) == 1


def test_the_cli_uses_the_cache_and_no_cache_bypasses_it(
    tmp_path: Path, pinned_base: str, agents: tuple[Path, Path], clean_b: Path, seeded: Cache
) -> None:
    from tests.conftest import nexlab_cli

    env = {"NEXLAB_CACHE_DIR": str(seeded.root), "NEXLAB_BUILD_CACHE": "on"}
    common = ["build", "--reproducible", "--agent", str(agents[1]), "--image", pinned_base, "--size", "200MiB"]
    hit = nexlab_cli(*common, "-o", str(tmp_path / "hit.ext4"), env=env, check=True)
    assert "cache" in hit.stdout and "stage" not in hit.stdout
    bypass = nexlab_cli(*common, "--no-cache", "-o", str(tmp_path / "clean.ext4"), env=env, check=True)
    assert "stage" in bypass.stdout
    for out in ("hit.ext4", "clean.ext4"):
        assert (tmp_path / out).read_bytes() == clean_b.read_bytes()


def test_a_cache_that_cannot_be_written_costs_only_speed(
    tmp_path: Path, pinned_base: str, agents: tuple[Path, Path], clean_b: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache would go\n")
    result = build(_spec(agents[1], pinned_base), tmp_path / "b.ext4", reproducible=True, cache=Cache(blocked))
    assert _cache_step(result) is None and result.output.read_bytes() == clean_b.read_bytes()
