"""The cache of the reproducible build: its key, and the build from an entry.

The key is the digest of every input that shapes the filesystem made before the
agent is written: the base image's ID, every ``BuildSpec`` field but the agent
and the engine (file inputs by content), nexlab's assets (setup.sh, services,
the placeholder, mke2fs.conf), e2fsprogs' version, the architecture and the
cache's format. A build from an entry runs the agent step a clean build runs on a copy of its
image (``overlay``) and checks the entry's CRC-32; an entry that fails its check
raises ``CorruptEntryError`` before the output is renamed into place (the build
then starts from scratch).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import nexlab
from nexlab.builder.spec import BuildSpec
from nexlab.cache import Cache
from nexlab.cache.store import FORMAT
from nexlab.errors import InputError

#: An image ID names its content: with one, a cache hit needs no engine at all.
IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
#: Fields that do not shape the cached filesystem.
_NOT_IN_KEY = frozenset({"agent", "engine"})
ENV = "NEXLAB_BUILD_CACHE"


def enabled_by_default() -> bool:
    """``NEXLAB_BUILD_CACHE=off`` turns the cache off unless a caller asks for it (the test suite does)."""
    return os.environ.get(ENV, "on").lower() not in ("off", "0", "no", "false")


def choose(cache: Cache | bool | None) -> Cache | None:
    """``build_reproducible``'s ``cache=``: True (the default place, unless ``NEXLAB_BUILD_CACHE=off``),
    False or None (no cache), or a ``Cache``."""
    if isinstance(cache, Cache):
        return cache
    return Cache() if cache and enabled_by_default() else None


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def assets_digest() -> str:
    assets = resources.files("nexlab.builder.assets")
    digest = hashlib.sha256()
    for item in sorted(assets.iterdir(), key=lambda i: i.name):
        if item.is_file() and not item.name.endswith((".py", ".pyc")):
            digest.update(item.name.encode() + b"\0" + item.read_bytes() + b"\0")
    return digest.hexdigest()


def code_digest() -> str:
    """sha256 of nexlab.builder's sources: a changed step (an edit in a development install, where
    the version stays the same) must not meet an entry another one made."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for source in sorted(root.rglob("*.py")):
        digest.update(str(source.relative_to(root)).encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def key_of(spec: BuildSpec, base_image_id: str, e2fsprogs: str, extra: Sequence[str] = ()) -> str:
    """The entry's key for ``spec`` on the base ``base_image_id`` (``extra``: what else shapes it)."""
    parts: list[str] = [f"nexlab-cache {FORMAT}", nexlab.__version__, code_digest(), base_image_id, e2fsprogs]
    parts.extend(extra)
    parts.append(assets_digest())
    parts.append(spec.target_arch())  # the image's CPU, not the host's (arm64 builds on amd64)
    for spec_field in dataclasses.fields(spec):
        if spec_field.name in _NOT_IN_KEY:
            continue
        value: Any = getattr(spec, spec_field.name)
        if spec_field.name == "base":
            continue  # its ID is in the key; the name is not (the same content, another tag)
        if isinstance(value, Path):
            value = "sha256:" + _file_digest(value)
        elif spec_field.name == "size":
            value = _size(value)
        parts.append(f"{spec_field.name}={value!r}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _size(value: Any) -> Any:
    from nexlab.sizes import parse_size

    try:
        return parse_size(value)
    except InputError:  # a size only a later step resolves ("auto") keeps its text
        return value
