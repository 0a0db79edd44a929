"""The build manifest: every input of a reproducible build, written beside the image.

Two images with equal manifests (apart from the output's name) must have equal
sha256; when they don't, the manifest is where to start looking. JSON with
sorted keys, so the manifest itself is reproducible too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from nexlab.errors import InputError

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class BuildManifest:
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
    uuid: str
    hash_seed: str
    image_sha256: str
    version: int = MANIFEST_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BuildManifest:
        try:
            data: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not a build manifest: {exc}") from None
        names = {f.name for f in fields(cls)}
        missing = names - set(data) - {"version"}
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
