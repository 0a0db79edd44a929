"""The build manifest: every input of a reproducible build, written beside the image.

It is the one record of the inputs: the build collects them into a manifest
(``image_sha256`` still empty), derives the UUID and hash seed from their
digest, and fills in the image's sha256 once the image exists. Two images with
equal manifests (apart from the output's name) must have equal sha256; when they
don't, the manifest is where to start looking. JSON with sorted keys, so the
manifest itself is reproducible too.

Version 2 added ``init`` (the init the service was installed for, already part
of the digest in version 1); a version 1 manifest reads with ``init`` "openrc".
Version 3 added ``free`` (``--size auto``'s free space in bytes, null for a fixed
size); with ``free`` set, ``size`` is the size auto chose from the content, and the
digest holds ``free`` in its place (the input, not what the tree made of it).
Version 3 also added ``slim`` (the slimming categories, part of the digest when
not empty, so a plain build keeps the UUID it had); older manifests read with none.
Version 3 also added ``compressed_sha256`` (of the ``.gz``/``.zst`` file written, null
for an uncompressed output) and made ``image_sha256`` always the ext4 image's,
also for a compressed output (version 2 recorded the compressed file's there).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid as uuidlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from nexlab.display import Summarized
from nexlab.errors import InputError

MANIFEST_VERSION = 3
#: A fixed namespace for the UUIDs nexlab derives (uuid5 of the inputs' digest).
NAMESPACE = uuidlib.UUID("6d1c2f0e-5b7a-4c2e-9f3d-6e657831ab00")
#: Fields a manifest may lack: the version, and what version 1 did not record.
_OPTIONAL = frozenset({"version", "init", "free", "slim", "compressed_sha256"})


@dataclass(frozen=True)
class BuildManifest(Summarized):
    base_image: str
    base_image_id: str
    base_image_digest: str
    agent_sha256: str
    script_sha256: str | None
    service_sha256: str
    setup_sha256: str
    e2fsprogs: str
    source_date_epoch: int
    epoch_source: str
    size: int
    network: str
    #: The init the service was installed for: it decides setup.sh's service step.
    init: str = "openrc"
    #: ``--size auto``: the free space asked for (``size`` is then what auto chose); None: fixed size.
    free: int | None = None
    #: The slimming categories removed from the staging tree (``nexlab.slim``).
    slim: tuple[str, ...] = ()
    #: Derived from ``digest()`` when not given (a manifest read back keeps what it says).
    uuid: str = ""
    hash_seed: str = ""
    #: Empty until the image exists; of the ext4 image, uncompressed.
    image_sha256: str = ""
    #: Of the compressed artifact (``.gz``, ``.zst``) as written; None for an uncompressed output.
    compressed_sha256: str | None = None
    version: int = MANIFEST_VERSION

    def summary(self) -> str:
        image = f"image {self.image_sha256[:16]}…" if self.image_sha256 else "no image yet"
        return f"{self.base_image} ({self.init}), epoch {self.source_date_epoch}, {self.size} bytes, {image}"

    def __post_init__(self) -> None:
        object.__setattr__(self, "slim", tuple(self.slim))  # a list when read back from JSON
        # From everything but the agent: the filesystem made before the agent is written
        # (nexlab.cache keeps it) must not depend on it.
        if not self.uuid:
            object.__setattr__(self, "uuid", str(uuidlib.uuid5(NAMESPACE, "uuid:" + self.tree_digest())))
        if not self.hash_seed:
            object.__setattr__(self, "hash_seed", str(uuidlib.uuid5(NAMESPACE, "hash_seed:" + self.tree_digest())))

    def digest(self) -> str:
        """sha256 of everything that decides the image's bytes.

        Names (the base image's tag, where the epoch came from) are left out: the
        same content under another name gives the same bytes.
        """
        return hashlib.sha256("\n".join([self.agent_sha256, self.tree_digest()]).encode()).hexdigest()

    def tree_digest(self) -> str:
        """sha256 of every input but the agent: it seeds the UUID and hash seed, so the
        filesystem the agent is written into last is the same for every agent."""
        parts = [
            self.base_image_id,
            self.script_sha256 or "-",
            self.service_sha256,
            self.setup_sha256,
            self.e2fsprogs,
            str(self.source_date_epoch),
            str(self.size) if self.free is None else f"auto:{self.free}",
            self.network,
            self.init,
        ]
        if self.slim:
            parts.append("slim:" + ",".join(self.slim))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def with_image(self, image_sha256: str, compressed_sha256: str | None = None) -> BuildManifest:
        return dataclasses.replace(self, image_sha256=image_sha256, compressed_sha256=compressed_sha256)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BuildManifest:
        try:
            data: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not a build manifest: {exc}") from None
        if not isinstance(data, dict):
            raise InputError("not a build manifest: not a JSON object")
        names = {f.name for f in fields(cls)}
        missing = names - set(data) - _OPTIONAL
        if missing:
            raise InputError(f"build manifest lacks {', '.join(sorted(missing))}")
        return cls(**{key: value for key, value in data.items() if key in names})

    def write(self, path: Path) -> Path:
        """Through a temporary and a rename: a link planted at ``path`` is replaced, not followed."""
        from nexlab.builder.output import write_new

        return write_new(path, self.to_json().encode("utf-8"))

    @classmethod
    def read(cls, path: Path) -> BuildManifest:
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read build manifest {path}: {exc.strerror}") from None


def manifest_path(image: Path) -> Path:
    """``rootfs.ext4`` → ``rootfs.ext4.manifest.json``."""
    return image.with_name(image.name + ".manifest.json")
