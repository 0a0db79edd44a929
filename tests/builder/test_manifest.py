"""The build manifest is the one record of a reproducible build's inputs (version 2)."""

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


def test_the_json_round_trips_with_the_image_and_version_2() -> None:
    manifest = BuildManifest(**INPUTS).with_image("f" * 64)  # type: ignore[arg-type]
    data = json.loads(manifest.to_json())
    assert data["version"] == MANIFEST_VERSION == 2 and data["init"] == "systemd"
    assert data["image_sha256"] == "f" * 64 and data["uuid"] == manifest.uuid
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
