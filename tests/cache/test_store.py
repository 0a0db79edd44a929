"""The cache store without Docker: atomic entries, their digests, listing and pruning."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from nexlab.cache import Cache, CorruptEntryError
from nexlab.cache.store import TEMPORARY
from nexlab.host import sparse


def _image(path: Path, marker: bytes = b"data") -> Path:
    """A sparse 8 MiB file with data at 1 MiB and at its end."""
    with open(path, "wb") as handle:
        handle.truncate(8 * 2**20)
        handle.seek(2**20)
        handle.write(marker * 1000)
        handle.seek(8 * 2**20 - 4096)
        handle.write(b"tail" * 1024)
    return path


def test_sparse_copy_and_hash_match_the_bytes(tmp_path: Path) -> None:
    import hashlib
    import zlib

    source = _image(tmp_path / "a")
    sparse.copy(source, tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == source.read_bytes()
    assert (tmp_path / "b").stat().st_blocks <= source.stat().st_blocks + 8  # holes stay holes
    assert sparse.sha256(source) == hashlib.sha256(source.read_bytes()).hexdigest()
    assert sparse.crc32(source) == f"{zlib.crc32(source.read_bytes()):08x}"


def test_sparse_copy_onto_a_longer_file_leaves_only_the_source(tmp_path: Path) -> None:
    source = _image(tmp_path / "a")
    target = tmp_path / "b"
    target.write_bytes(b"\xff" * (9 * 2**20))  # longer, and data where the source has holes
    sparse.copy(source, target)
    assert target.read_bytes() == source.read_bytes()


def test_store_lookup_verify(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    entry = cache.store("k" * 64, _image(tmp_path / "a"), {"description": "test"})
    found = cache.lookup("k" * 64)
    assert found is not None and found.image_crc32 == entry.image_crc32 and found.description == "test"
    cache.verify(found)  # intact
    assert [e.key for e in cache.entries()] == ["k" * 64]
    assert not list(cache.entries_dir.glob(f"*{TEMPORARY}"))
    assert oct(cache.root.stat().st_mode & 0o777) == "0o700"


def test_a_flipped_byte_is_caught_on_use_and_the_entry_removed(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    entry = cache.store("f" * 64, _image(tmp_path / "a"), {})
    with open(entry.image, "r+b") as handle:
        handle.seek(2**20 + 10)
        byte = handle.read(1)
        handle.seek(2**20 + 10)
        handle.write(bytes([byte[0] ^ 0xFF]))
    found = cache.lookup("f" * 64)
    assert found is not None  # the size is right: only the digest tells
    with pytest.raises(CorruptEntryError, match="CRC-32"):
        cache.verify(found)
    assert cache.lookup("f" * 64) is None and not entry.directory.exists()


def test_a_truncated_image_or_an_edited_record_is_never_found(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    truncated = cache.store("t" * 64, _image(tmp_path / "a"), {})
    os.truncate(truncated.image, 2**20)
    assert cache.lookup("t" * 64) is None and not truncated.directory.exists()
    edited = cache.store("e" * 64, _image(tmp_path / "b"), {"description": "x"})
    record = json.loads((edited.directory / "entry.json").read_text())
    record["entry"]["meta"]["description"] = "y"
    (edited.directory / "entry.json").write_text(json.dumps(record))
    assert cache.lookup("e" * 64) is None and not edited.directory.exists()


def test_a_partial_entry_of_a_dead_writer_is_ignored_then_removed(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.store("a" * 64, _image(tmp_path / "a"), {})
    # What a build killed while writing leaves: a temporary named with its (dead) PID.
    partial = cache.entries_dir / f".{'b' * 16}.nx999999999-0badc0de{TEMPORARY}"
    partial.mkdir()
    (partial / "image.ext4").write_bytes(b"half")
    assert cache.lookup("b" * 64) is None
    assert [e.key for e in cache.entries()] == ["a" * 64]
    assert partial in cache.remove_stale() and not partial.exists()


def test_prune_removes_the_least_recently_used_first(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    keys = ["1" * 64, "2" * 64, "3" * 64]
    now = time.time()
    for age, key in zip((300, 200, 100), keys, strict=True):
        entry = cache.store(key, _image(tmp_path / key[:4], key[:1].encode()), {})
        os.utime(entry.directory / "entry.json", (now - age, now - age))
    # Room for the two newest exactly (entries differ by a few bytes of JSON).
    removed = cache.prune(max_bytes=sum(e.disk_bytes for e in cache.entries()[1:]))
    assert [e.key for e in removed] == keys[:1]
    removed = cache.prune(older_than=150)
    assert [e.key for e in removed] == keys[1:2]
    assert [e.key for e in cache.entries()] == keys[2:]
    assert [e.key for e in cache.prune(max_bytes=0)] == keys[2:] and cache.entries() == []


def test_cache_cli_ls_and_prune(tmp_path: Path) -> None:
    from tests.conftest import nexlab_cli

    env = {"NEXLAB_CACHE_DIR": str(tmp_path / "cache")}
    assert "no entries" in nexlab_cli("cache", "ls", env=env, check=True).stdout
    Cache(tmp_path / "cache").store("c" * 64, _image(tmp_path / "a"), {"description": "debian, 200 MiB"})
    listing = nexlab_cli("cache", "ls", env=env, check=True).stdout
    assert "cccccccccccc" in listing and "debian, 200 MiB" in listing and "1 entries" in listing
    refused = nexlab_cli("cache", "prune", env=env)
    assert refused.returncode != 0 and "--max-size" in refused.stderr and "Traceback" not in refused.stderr
    bad = nexlab_cli("cache", "prune", "--older-than", "soon", env=env)
    assert bad.returncode != 0 and "not a duration" in bad.stderr
    assert "1 removed; 0 left" in nexlab_cli("cache", "prune", "--max-size", "0", env=env, check=True).stdout
