"""The build manifest is the one record of a reproducible build's inputs (version 3)."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from nexlab.builder.manifest import MANIFEST_VERSION, NAMESPACE, BuildManifest
from nexlab.errors import InputError

INPUTS = dict(
    base_image="nexlab/debian:bookworm",
    base_image_id="sha256:" + "1" * 64,
    base_image_digest="sha256:" + "1" * 64,
    agent_sha256="a" * 64,
    script_sha256=None,
    service_sha256="s" * 64,
    setup_sha256="u" * 64,
    e2fsprogs="1.47.0",
    source_date_epoch=1_700_000_000,
    epoch_source="given",
    size=200 * 2**20,
    network="none",
    init="systemd",
)


def test_uuid_and_hash_seed_come_from_every_input_but_the_agent() -> None:
    manifest = BuildManifest(**INPUTS)  # type: ignore[arg-type]
    # Issue 14: the agent is written last, into a filesystem made without it (and cached),
    # so the UUID and hash seed come from the other inputs; the digest still has them all.
    parts = ["sha256:" + "1" * 64, "-", "s" * 64, "u" * 64, "1.47.0", "1700000000", str(200 * 2**20), "none"]
    tree = hashlib.sha256("\n".join([*parts, "systemd"]).encode()).hexdigest()
    assert manifest.tree_digest() == tree
    assert manifest.digest() == hashlib.sha256(("a" * 64 + "\n" + tree).encode()).hexdigest()
    assert manifest.uuid == str(uuid.uuid5(NAMESPACE, "uuid:" + tree))
    assert manifest.hash_seed == str(uuid.uuid5(NAMESPACE, "hash_seed:" + tree))
    # A name is no input of the bytes; the init is; the agent changes the digest, not the UUID.
    renamed = BuildManifest(**{**INPUTS, "base_image": "other:tag"})  # type: ignore[arg-type]
    assert renamed.uuid == manifest.uuid
    assert BuildManifest(**{**INPUTS, "init": "openrc"}).uuid != manifest.uuid  # type: ignore[arg-type]
    other_agent = BuildManifest(**{**INPUTS, "agent_sha256": "b" * 64})  # type: ignore[arg-type]
    assert other_agent.uuid == manifest.uuid and other_agent.digest() != manifest.digest()


def test_the_json_round_trips_with_the_image_and_version_3() -> None:
    manifest = BuildManifest(**INPUTS).with_image("f" * 64)  # type: ignore[arg-type]
    data = json.loads(manifest.to_json())
    assert data["version"] == MANIFEST_VERSION == 3 and data["init"] == "systemd" and data["free"] is None
    assert data["image_sha256"] == "f" * 64 and data["uuid"] == manifest.uuid
    assert data["compressed_sha256"] is None  # an uncompressed output
    assert list(data) == sorted(data)
    assert BuildManifest.from_json(manifest.to_json()) == manifest


def test_a_version_1_manifest_still_reads() -> None:
    v1 = {k: v for k, v in INPUTS.items() if k != "init"} | {
        "uuid": "u-written",
        "hash_seed": "h-written",
        "image_sha256": "f" * 64,
        "version": 1,
    }
    read = BuildManifest.from_json(json.dumps(v1))
    assert read.version == 1 and read.init == "openrc"
    assert read.uuid == "u-written" and read.hash_seed == "h-written"  # what the file says, not re-derived
    with pytest.raises(InputError, match="lacks image_sha256"):
        BuildManifest.from_json(json.dumps({k: v for k, v in v1.items() if k != "image_sha256"}))


def test_an_auto_size_manifest_digests_the_free_space_asked_not_the_size_chosen() -> None:
    fixed = BuildManifest(**INPUTS)  # type: ignore[arg-type]
    auto = BuildManifest(**{**INPUTS, "free": 32 << 20})  # type: ignore[arg-type]
    assert auto.uuid != fixed.uuid
    # The size auto chose is recorded, and is no input: the same request gives the same UUID.
    assert BuildManifest(**{**INPUTS, "free": 32 << 20, "size": 1 << 30}).uuid == auto.uuid  # type: ignore[arg-type]
    assert BuildManifest(**{**INPUTS, "free": 64 << 20}).uuid != auto.uuid  # type: ignore[arg-type]
    assert BuildManifest.from_json(auto.to_json()) == auto


def test_a_compressed_output_records_both_digests_and_a_version_2_manifest_still_reads() -> None:
    manifest = BuildManifest(**INPUTS).with_image("f" * 64, "c" * 64)  # type: ignore[arg-type]
    data = json.loads(manifest.to_json())
    assert data["image_sha256"] == "f" * 64 and data["compressed_sha256"] == "c" * 64
    assert BuildManifest.from_json(manifest.to_json()) == manifest
    assert manifest.uuid == BuildManifest(**INPUTS).uuid  # an output digest is no input
    v2 = {k: v for k, v in data.items() if k != "compressed_sha256"} | {"version": 2}
    read = BuildManifest.from_json(json.dumps(v2))
    assert read.version == 2 and read.compressed_sha256 is None
