"""Offline base images: Alpine minirootfs import, the Debian cache, and architecture checks."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexlab.builder import base, engine
from nexlab.builder.output import sha256_file
from nexlab.errors import ArchitectureError, InputError
from tests.conftest import ALPINE_TARBALLS, SAMPLE_AGENT, nexlab_cli, require


def test_alpine_import_from_the_official_minirootfs(docker_client: object) -> None:
    tarball = ALPINE_TARBALLS["3.20"]
    require(tarball.is_file(), f"the Alpine minirootfs {tarball}")
    result = nexlab_cli("base", "alpine", "--rootfs", str(tarball), "--tag", "nexlab-test/alpine:3.20")
    assert result.returncode == 0, result.stderr
    assert "Alpine 3.20.3" in result.stdout and "busybox init" in result.stdout
    image = engine.ensure_image(docker_client, "nexlab-test/alpine:3.20", pull=False)  # type: ignore[arg-type]
    assert image.attrs["Architecture"] == "amd64"
    assert base.alpine(tarball).tag == "nexlab/alpine:3.20.3", "the default tag carries the release"


def test_alpine_import_rejects_what_is_not_a_minirootfs(tmp_path: Path, docker_client: object) -> None:
    not_tar = tmp_path / "junk.tar.gz"
    not_tar.write_bytes(b"\x1f\x8b garbage")
    result = nexlab_cli("base", "alpine", "--rootfs", str(not_tar))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not a readable tarball" in result.stderr
    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as archive:
        info = tarfile.TarInfo("etc/os-release")
        data = b"ID=other\n"
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with pytest.raises(InputError, match="not an Alpine minirootfs"):
        base.alpine(other)


def test_alpine_import_the_engine_refuses_is_one_line(tmp_path: Path, docker_client: object) -> None:
    import zipfile

    # libarchive reads a zip (so the release is found), but docker import takes only tarballs.
    archive = tmp_path / "alpine.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("etc/alpine-release", "3.19.4\n")
        zipped.writestr("bin/sh", "x")
    result = nexlab_cli("base", "alpine", "--rootfs", str(archive), "--tag", "nexlab-test/refused:x")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if "error:" in line] == [
        next(line for line in result.stderr.splitlines() if "docker import refused alpine.zip" in line)
    ]


def test_debian_base_is_reused_when_present(debian_base: str) -> None:
    result = nexlab_cli("base", "debian", "--tag", debian_base)
    assert result.returncode == 0, result.stderr
    assert "already present" in result.stdout


def test_debian_base_imports_from_the_cache_without_debootstrap(debian_base: str, docker_client: object) -> None:
    spec = base.DebianSpec()
    cached = base.cache_dir() / f"debian-{spec.suite}-{spec.cache_key()}.tar.gz"
    require(cached.is_file(), f"the debootstrap cache {cached} (make base creates it)")
    tag = "nexlab-test/debian:from-cache"
    try:
        result = base.debian(tag)
        assert result.cached and result.seconds < 60
        image = docker_client.images.get(tag)  # type: ignore[attr-defined]
        assert image.attrs["Architecture"] == "amd64"
    finally:
        docker_client.images.remove(tag, force=True)  # type: ignore[attr-defined]


def test_base_image_for_another_architecture_is_refused(tmp_path: Path, docker_client: object, is_root: bool) -> None:
    (tmp_path / "hello").write_text("hi\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello /hello\n")
    tag = "nexlab-test/arm64:latest"
    docker_client.images.build(path=str(tmp_path), tag=tag, platform="linux/arm64")  # type: ignore[attr-defined]
    try:
        with pytest.raises(ArchitectureError, match="arm64"):
            engine.ensure_image(docker_client, tag)  # type: ignore[arg-type]
        out = tmp_path / "rootfs.ext4"
        result = nexlab_cli("build", "--agent", str(SAMPLE_AGENT), "--image", tag, "-o", str(out))
        assert result.returncode == 2 and "is for arm64" in result.stderr and "Traceback" not in result.stderr
        assert not out.exists()
    finally:
        docker_client.images.remove(tag, force=True)  # type: ignore[attr-defined]


def test_importing_the_same_tarball_again_reuses_the_image(docker_client: object) -> None:
    tarball = ALPINE_TARBALLS["3.19"]
    require(tarball.is_file(), f"the Alpine minirootfs {tarball}")
    first = base.alpine(tarball, "nexlab-test/alpine:reuse")
    dangling = len(docker_client.images.list(filters={"dangling": True}))  # type: ignore[attr-defined]
    try:
        second = base.alpine(tarball, "nexlab-test/alpine:reuse")
        assert second.cached and second.image_id == first.image_id
        assert len(docker_client.images.list(filters={"dangling": True})) == dangling  # type: ignore[attr-defined]
        labels = docker_client.images.get("nexlab-test/alpine:reuse").labels  # type: ignore[attr-defined]
        assert labels[base.SOURCE_LABEL] == sha256_file(tarball)
    finally:
        docker_client.images.remove("nexlab-test/alpine:reuse", force=True)  # type: ignore[attr-defined]


@pytest.fixture
def alpine_server(tmp_path: Path) -> Iterator[str]:
    """A local HTTP server with the shared 3.20 tarball and a tampered copy (Alpine's CDN is unreachable here)."""
    import functools
    import http.server
    import threading

    tarball = ALPINE_TARBALLS["3.20"]
    require(tarball.is_file(), f"the Alpine minirootfs {tarball}")
    served = tmp_path / "served"
    (served / "good").mkdir(parents=True)
    (served / "bad").mkdir()
    (served / "good" / tarball.name).write_bytes(tarball.read_bytes())
    (served / "bad" / tarball.name).write_bytes(tarball.read_bytes() + b"tampered")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_alpine_tarball_is_found_then_cached_then_downloaded(
    tmp_path: Path, alpine_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = base.alpine_release("3.20")
    cache = tmp_path / "cache"
    monkeypatch.setenv("NEXLAB_CACHE", str(cache))
    shared = ALPINE_TARBALLS["3.20"].parent
    assert base.alpine_tarball("3.20", (shared,), download=False) == shared / release.filename
    with pytest.raises(InputError, match="is in none of"):
        base.alpine_tarball("3.20", (tmp_path,), download=False)
    fetched = base.alpine_tarball("3.20", (tmp_path,), url=f"{alpine_server}/good/{release.filename}")
    assert fetched == cache / release.filename and sha256_file(fetched) == release.sha256
    assert sorted(p.name for p in cache.iterdir()) == [release.filename], "no partial file left"
    # Now the cache answers, no server needed.
    assert base.alpine_tarball("3.20", (tmp_path,), url="http://127.0.0.1:9/nothing") == fetched


def test_alpine_download_with_another_checksum_is_refused(
    tmp_path: Path, alpine_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = base.alpine_release("3.20")
    cache = tmp_path / "cache"
    monkeypatch.setenv("NEXLAB_CACHE", str(cache))
    with pytest.raises(InputError, match="not the pinned"):
        base.alpine_tarball("3.20", (), url=f"{alpine_server}/bad/{release.filename}")
    assert not cache.exists() or list(cache.iterdir()) == [], "nothing kept"
    with pytest.raises(InputError, match="cannot download"):
        base.alpine_tarball("3.20", (), url=f"{alpine_server}/missing/{release.filename}")
    # A tampered file already in the cache is refused too, not imported.
    cache.mkdir(exist_ok=True)
    (cache / release.filename).write_bytes(b"not alpine")
    with pytest.raises(InputError, match="not the pinned"):
        base.alpine_tarball("3.20", ())
    result = nexlab_cli("base", "alpine", "--version", "3.7")
    assert (
        result.returncode != 0 and "no pinned Alpine minirootfs" in result.stderr and "Traceback" not in result.stderr
    )
