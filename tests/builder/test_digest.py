"""The mount build's pending digest (nexlab.builder.digest): computed on first read, once, of
the file as built; a file replaced or changed since is refused, never hashed as the build's."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from nexlab.builder.digest import PendingDigest
from nexlab.builder.output import sha256_file
from nexlab.builder.results import BuildResult
from nexlab.errors import InputError
from nexlab.host import sparse


def _image(path: Path) -> Path:
    """A sparse file with data between holes, as a built image is."""
    with open(path, "wb") as handle:
        handle.truncate(64 << 20)
        handle.seek(3 << 20)
        handle.write(os.urandom(1 << 20))
        handle.seek(40 << 20)
        handle.write(b"superblock")
    return path


def test_the_digest_is_the_file_s_computed_on_first_read_only(tmp_path: Path) -> None:
    image = _image(tmp_path / "rootfs.ext4")
    pending = PendingDigest(image)
    assert not pending.known and "not computed yet" in repr(pending)
    assert pending.value() == sha256_file(image) and pending.known
    assert pending.value() in repr(pending)


def test_many_threads_share_one_computation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = _image(tmp_path / "rootfs.ext4")
    expected = sha256_file(image)
    calls: list[Path] = []
    real = sparse.sha256_of

    def counted(handle, path):  # type: ignore[no-untyped-def]
        calls.append(path)
        return real(handle, path)

    monkeypatch.setattr(sparse, "sha256_of", counted)
    pending = PendingDigest(image)
    start = threading.Barrier(8)
    seen: list[str] = []

    def read() -> None:
        start.wait()
        seen.append(pending.value())

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [expected] * 8 and calls == [image]


@pytest.mark.parametrize("change", ["rewritten", "replaced", "removed", "appended"])
def test_a_file_changed_since_the_build_is_refused(tmp_path: Path, change: str) -> None:
    image = _image(tmp_path / "rootfs.ext4")
    pending = PendingDigest(image)
    if change == "rewritten":
        with open(image, "r+b") as handle:
            handle.seek(3 << 20)
            handle.write(b"x")
    elif change == "replaced":
        other = _image(tmp_path / "other.ext4")
        os.replace(other, image)
    elif change == "removed":
        image.unlink()
    else:
        with open(image, "ab") as handle:
            handle.write(b"more")
    with pytest.raises(InputError, match="since it was built: its sha256 would not be the build's") as caught:
        pending.value()
    assert caught.value.hint == f"sha256sum {image} gives the file's as it is now"
    assert not pending.known


def test_a_build_result_reads_a_pending_digest_only_when_asked(tmp_path: Path) -> None:
    image = _image(tmp_path / "rootfs.ext4")
    result = BuildResult(seconds=1.0, output=image, size=64 << 20, steps=(), sha256=PendingDigest(image))
    assert not result.sha256_known
    assert dict(result.facts(digest=False))["sha256"] == "not computed (nexlab build --json prints it)"
    assert not result.sha256_known, "the plain output does not compute it"
    # An uncompressed output is the image: both digests are the one computation.
    assert result.image_sha256 == sha256_file(image) and result.sha256_known
    assert result.sha256 == result.image_sha256 and dict(result.facts(digest=False))["sha256"] == result.sha256
    known = BuildResult(seconds=1.0, output=image, size=64 << 20, steps=(), sha256="5" * 64)
    assert known.sha256_known and known.image_sha256 == "5" * 64 and dict(known.facts())["sha256"] == "5" * 64
    with pytest.raises(TypeError, match="sha256"):
        BuildResult(seconds=1.0, output=image, size=1, steps=())  # type: ignore[call-arg]
