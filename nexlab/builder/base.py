"""Offline base images: Debian from debootstrap, Alpine from a minirootfs tarball.

No registry is needed: both end in ``docker import`` through the SDK. The
debootstrap tree is cached as a tarball outside any checkout
(``$NEXLAB_CACHE`` or ``/var/cache/nexlab``), keyed by everything that shapes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab import tempdirs
from nexlab.builder import binfmt, engine
from nexlab.builder.inputs import regular_file
from nexlab.builder.output import sha256_file
from nexlab.display import Summarized
from nexlab.errors import CommandError, InputError
from nexlab.progress import Progress, or_logging
from nexlab.run import run

if TYPE_CHECKING:
    import docker

log = logging.getLogger("nexlab.base")

DEFAULT_DEBIAN_TAG = "nexlab/debian:bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


#: The inits ``nexlab base debian`` can install.
DEBIAN_INITS = ("openrc", "systemd", "sysvinit")
#: The architectures it can make a base for (Docker's names, which are also Debian's for these two).
DEBIAN_ARCHES = ("amd64", "arm64")


@dataclass(frozen=True)
class DebianSpec:
    suite: str = "bookworm"
    mirror: str = DEFAULT_MIRROR
    #: sysvinit's /sbin/init runs OpenRC; util-linux has agetty for the serial console.
    packages: tuple[str, ...] = ("sysvinit-core", "util-linux", "ca-certificates")
    #: Installed with apt in a second pass: debootstrap's resolver picks sysv-rc for
    #: sysvinit-core and then fails on openrc, which conflicts with it.
    second_pass: tuple[str, ...] = ("openrc",)
    #: Leave apt's downloaded packages and indexes in (a base as many real ones are).
    keep_caches: bool = False
    #: Docker's name for the CPU ("amd64", "arm64"); a foreign one runs debootstrap's second stage under
    #: qemu-user-static through binfmt_misc.
    arch: str = "amd64"

    @classmethod
    def variant(
        cls,
        suite: str = "bookworm",
        init: str = "openrc",
        *,
        keep_caches: bool = False,
        mirror: str = DEFAULT_MIRROR,
        arch: str = "amd64",
    ) -> DebianSpec:
        """The spec for ``suite`` with ``init`` as PID 1's companion: OpenRC (via sysvinit) or systemd."""
        if arch not in DEBIAN_ARCHES:
            raise InputError(f"unknown architecture {arch!r} for a Debian base", hint="use amd64 or arm64")
        if init == "openrc":
            return cls(suite=suite, mirror=mirror, keep_caches=keep_caches, arch=arch)
        if init == "systemd":
            # systemd-sysv makes systemd PID 1, the shape of Debian's and Firecracker's CI images.
            return cls(
                suite=suite,
                mirror=mirror,
                packages=("systemd-sysv", "util-linux", "ca-certificates"),
                second_pass=(),
                keep_caches=keep_caches,
                arch=arch,
            )
        if init == "sysvinit":
            # sysvinit's own rc scripts (sysv-rc, initscripts), no OpenRC: Debian's other classic shape.
            return cls(suite=suite, mirror=mirror, second_pass=(), keep_caches=keep_caches, arch=arch)
        raise InputError(f"unknown init {init!r} for a Debian base", hint=f"use one of {', '.join(DEBIAN_INITS)}")

    @property
    def init(self) -> str:
        if "systemd-sysv" in self.packages:
            return "systemd"
        return "openrc" if "openrc" in self.second_pass else "sysvinit"

    def default_tag(self) -> str:
        """``nexlab/debian:SUITE``, with ``-systemd``/``-sysvinit`` and ``-caches`` for the variants."""
        suffix = ("" if self.init == "openrc" else f"-{self.init}") + ("-caches" if self.keep_caches else "")
        suffix += "" if self.arch == "amd64" else f"-{self.arch}"
        return f"nexlab/debian:{self.suite}{suffix}"

    def cache_key(self) -> str:
        fields = asdict(self)
        if not self.keep_caches:
            del fields["keep_caches"]  # the key of specs made before the option existed stays the same
        if self.arch == "amd64":
            del fields["arch"]  # likewise for the architecture
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BaseResult(Summarized):
    tag: str
    image_id: str
    source: str
    seconds: float
    cached: bool
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        return f"{self.tag} ({self.image_id[:19]}) from {self.source}" + (", cached" if self.cached else "")

    def __str__(self) -> str:
        lines = [
            f"base image {self.tag} ({self.image_id[:19]}) from {self.source} in {self.seconds:.1f} s"
            + (" (cached)" if self.cached else "")
        ]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def cache_dir() -> Path:
    return Path(os.environ.get("NEXLAB_CACHE", "/var/cache/nexlab"))


def debian(
    tag: str = DEFAULT_DEBIAN_TAG,
    spec: DebianSpec = DebianSpec(),
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> BaseResult:
    """Make (or reuse) a Debian minbase image with OpenRC (or systemd) and the ``nex`` user, imported as ``tag``."""
    import docker.errors

    progress = or_logging(progress)
    start = time.monotonic()
    client = engine.connect()
    if not force:
        with contextlib.suppress(docker.errors.ImageNotFound):
            image = client.images.get(tag)
            return BaseResult(tag, image.id, "docker (already present)", time.monotonic() - start, cached=True)
    if os.geteuid() != 0:
        raise InputError("debootstrap needs root")
    tarball = debian_cache(spec)
    cached = tarball.is_file() and not force
    if not cached:
        if spec.arch != engine.host_architecture():
            binfmt.require(spec.arch)
        with progress.step("debootstrap", f"{spec.suite} {spec.arch} minbase from {spec.mirror}"):
            _debootstrap_tarball(spec, tarball, progress)
    with progress.step("import", f"docker import as {tag}"):
        image_id, _ = _import(client, tarball, tag, arch=spec.arch)
    source = f"debootstrap {spec.suite} {spec.arch} with {spec.init}" + (", caches kept" if spec.keep_caches else "")
    return BaseResult(tag, image_id, source, time.monotonic() - start, cached=cached)


def debian_cache(spec: DebianSpec) -> Path:
    """Where the debootstrap tree of ``spec`` is cached (one file per variant)."""
    arch = "" if spec.arch == "amd64" else f"-{spec.arch}"
    return cache_dir() / f"debian-{spec.suite}{arch}-{spec.cache_key()}.tar.gz"


def _debootstrap_tarball(spec: DebianSpec, tarball: Path, progress: Progress) -> None:
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with _scratch_dir("debootstrap") as root:
        argv = [
            "debootstrap",
            "--variant=minbase",
            f"--arch={spec.arch}",
            f"--include={','.join(spec.packages)}",
            spec.suite,
            str(root),
            spec.mirror,
        ]
        try:
            # debootstrap says nothing on its stderr for minutes: its lines go to the progress log as they come.
            run(argv, timeout=1800, on_line=progress.log_line)
        except CommandError as exc:
            debootstrap_log = root / "debootstrap" / "debootstrap.log"
            detail = debootstrap_log.read_text(errors="replace")[-400:] if debootstrap_log.exists() else exc.stderr
            raise CommandError(argv, exc.returncode, detail, timeout=exc.timeout) from None
        if spec.second_pass:
            run(
                ["chroot", str(root), "apt-get", "install", "-y", "-q", "--no-install-recommends", *spec.second_pass],
                env={"DEBIAN_FRONTEND": "noninteractive"},
                timeout=1800,
                on_line=progress.log_line,
            )
            if not spec.keep_caches:
                run(["chroot", str(root), "apt-get", "clean"])
        run(["chroot", str(root), "groupadd", "-g", "1000", "nex"])
        run(
            [
                "chroot",
                str(root),
                "useradd",
                "-u",
                "1000",
                "-g",
                "1000",
                "-d",
                "/home/nex",
                "-m",
                "-s",
                "/bin/sh",
                "nex",
            ]
        )
        # Downloaded packages and indexes are not part of the system (unless asked for).
        for leftover in () if spec.keep_caches else ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / leftover).glob("*"):
                if item.is_file():
                    item.unlink()
        partial = tarball.with_suffix(".partial")
        _write_tarball(root, partial)
        os.replace(partial, tarball)
        progress.log_line(f"cached {tarball}")


def _write_tarball(root: Path, destination: Path) -> None:
    import libarchive

    with libarchive.file_writer(str(destination), "pax_restricted", "gzip") as archive:
        archive.add_files(str(root), pathname=".")


def _scratch_dir(kind: str) -> contextlib.AbstractContextManager[Path]:
    """Under the run's temporary base, or in ``$NEXLAB_SCRATCH`` (a debootstrap tree needs a
    file system that allows devices and exec)."""
    configured = os.environ.get("NEXLAB_SCRATCH")
    if configured:
        made = Path(tempfile.mkdtemp(prefix=tempdirs.name(kind) + "-", dir=configured))
        return tempdirs.removing(made, keepable=False)
    return tempdirs.directory(kind)


#: Label on imported images: the sha256 of the tarball they came from.
SOURCE_LABEL = "org.nexlab.source-sha256"


def _import(client: docker.DockerClient, tarball: Path, tag: str, *, arch: str = "") -> tuple[str, bool]:
    """Import ``tarball`` as ``tag``: (image id, whether ``tag`` already held exactly that tarball).

    Re-importing the same tarball would only leave the previous image behind as
    a dangling ``<none>`` image, so an image labelled with the tarball's sha256 is reused.
    """
    import docker.errors

    digest = sha256_file(tarball)
    with contextlib.suppress(docker.errors.ImageNotFound):
        existing = client.images.get(tag)
        if (existing.labels or {}).get(SOURCE_LABEL) == digest:
            return str(existing.id), True
    if arch and arch != engine.host_architecture():
        return _load_as(client, tarball, tag, arch, digest), False
    repository, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
    params = {"fromSrc": "-", "repo": repository, "tag": version, "changes": [f"LABEL {SOURCE_LABEL}={digest}"]}
    with tarball.open("rb") as data:
        try:
            api = client.api
            response = api._result(
                api._post(
                    api._url("/images/create"),
                    data=data.read(),
                    params=params,
                    headers={"Content-Type": "application/tar"},
                    timeout=None,
                )
            )
        except docker.errors.APIError as exc:
            # The engine rejects what is not a tarball of a root filesystem.
            reason = exc.explanation or str(exc)
            raise InputError(f"docker import refused {tarball.name}: {reason}") from None
    status = response if isinstance(response, str) else json.dumps(response)
    if "error" in status.lower() and "status" not in status.lower():
        raise CommandError(["docker", "import"], 1, status)
    return str(client.images.get(tag).id), False


def _load_as(client: docker.DockerClient, tarball: Path, tag: str, arch: str, digest: str) -> str:
    """Load ``tarball`` (a root filesystem, gzipped or not) as a one-layer image for ``arch``.

    Why not ``docker import --platform``: engines up to API 1.41 (Debian's docker.io) ignore
    the platform of an import and label the image with the host's architecture, which the
    build then rightly refuses for ``--arch``. ``docker load`` takes the image config as
    written, so the config (architecture, label) and the layer's diff id are written here in
    the ``docker save`` layout.
    """
    import tarfile

    import docker.errors

    with tempdirs.directory("nexlab-load-") as work:
        layer = work / "layer.tar"
        layer_digest = hashlib.sha256()
        with open(tarball, "rb") as raw, layer.open("wb") as out:
            source = gzip.GzipFile(fileobj=raw) if raw.read(2) == b"\x1f\x8b" else raw
            raw.seek(0)
            while chunk := source.read(1 << 20):
                layer_digest.update(chunk)
                out.write(chunk)
        # Created as docker import would set it, but from the tarball (the debootstrap run), so a
        # re-load gives the same image; --reproducible takes its default epoch from it.
        created = dt.datetime.fromtimestamp(int(tarball.stat().st_mtime), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        config = {
            "architecture": arch,
            "created": created,
            "history": [{"created": created, "comment": f"nexlab: loaded from {tarball.name}"}],
            "os": "linux",
            "config": {"Labels": {SOURCE_LABEL: digest}},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest.hexdigest()}"]},
        }
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]).encode()
        archive = work / "image.tar"
        with tarfile.open(archive, "w") as out_tar:
            for name, data in ((config_name, config_bytes), ("manifest.json", manifest)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                out_tar.addfile(info, io.BytesIO(data))
            out_tar.add(layer, arcname="layer.tar")
        layer.unlink()
        with archive.open("rb") as image_tar:
            try:
                client.images.load(image_tar)
            except docker.errors.APIError as exc:
                raise InputError(f"docker load refused {tarball.name}: {exc.explanation or exc}") from None
    return str(client.images.get(tag).id)


@dataclass(frozen=True)
class AlpineRelease:
    """An official Alpine minirootfs, pinned by its sha256."""

    version: str
    sha256: str

    @property
    def branch(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def filename(self) -> str:
        return f"alpine-minirootfs-{self.version}-x86_64.tar.gz"

    @property
    def url(self) -> str:
        return f"{ALPINE_MIRROR}/v{self.branch}/releases/x86_64/{self.filename}"


ALPINE_MIRROR = "https://dl-cdn.alpinelinux.org/alpine"
#: The sha256 of the official tarballs (the ones alpinelinux/docker-alpine's
#: branches ship, whose checksums.sha512 they match).
ALPINE_RELEASES = {
    "3.19": AlpineRelease("3.19.4", "a2a87004e87720cbb0372c08b7de9b80748afdfd7fd72d2eab2ec0b074b92211"),
    "3.20": AlpineRelease("3.20.3", "d4e6fd67dcf75e40c451560ac7265166c2b72a0f38ddc9aae756a7de3d1efa0c"),
}
_DOWNLOAD_LIMIT = 64 << 20


def alpine_release(version: str) -> AlpineRelease:
    release = ALPINE_RELEASES.get(version) or next((r for r in ALPINE_RELEASES.values() if r.version == version), None)
    if release is None:
        raise InputError(f"no pinned Alpine minirootfs {version!r}", hint=f"use one of {', '.join(ALPINE_RELEASES)}")
    return release


def alpine_tarball(
    version: str,
    search: tuple[str | os.PathLike[str], ...] = (),
    *,
    download: bool = True,
    url: str | None = None,
    timeout: float = 60,
) -> Path:
    """The minirootfs of ``version``: from ``search``'s folders, then the cache, then downloaded.

    Whatever is found or fetched must have the pinned sha256; a download goes to
    the cache folder under a temporary name and is renamed only once it checks out.
    """
    release = alpine_release(version)
    for folder in (*search, cache_dir()):
        candidate = Path(folder) / release.filename
        if candidate.is_file():
            _check_sha256(candidate, release)
            return candidate
    if not download:
        raise InputError(f"{release.filename} is in none of {', '.join(map(str, (*search, cache_dir())))}")
    destination = cache_dir() / release.filename
    _download(url or release.url, destination, release, timeout)
    return destination


def _check_sha256(path: Path, release: AlpineRelease) -> None:
    digest = sha256_file(path)
    if digest != release.sha256:
        raise InputError(
            f"{path} has sha256 {digest[:16]}..., not the pinned {release.sha256[:16]}... of Alpine {release.version}"
        )


def _download(url: str, destination: Path, release: AlpineRelease, timeout: float) -> None:
    import urllib.error
    import urllib.request

    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as out:
            total = 0
            while chunk := response.read(1 << 16):
                total += len(chunk)
                if total > _DOWNLOAD_LIMIT:
                    raise InputError(f"{url} is larger than {_DOWNLOAD_LIMIT >> 20} MiB: not a minirootfs")
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != release.sha256:
            raise InputError(
                f"the download of {url} has sha256 {digest.hexdigest()[:16]}..., "
                f"not the pinned {release.sha256[:16]}...: refused"
            )
        os.replace(partial, destination)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InputError(f"cannot download {url}: {reason}", hint="put the tarball in the cache folder") from None
    finally:
        partial.unlink(missing_ok=True)


def alpine(rootfs: str | os.PathLike[str], tag: str | None = None, *, progress: Progress | None = None) -> BaseResult:
    """Import an Alpine minirootfs tarball as a Docker image (default tag ``nexlab/alpine:VERSION``)."""
    progress = or_logging(progress)
    start = time.monotonic()
    tarball = regular_file(rootfs, "Alpine minirootfs")
    version = _alpine_release(tarball)
    tag = tag or f"nexlab/alpine:{version}"
    client = engine.connect()
    with progress.step("import", f"docker import {tarball.name} as {tag}"):
        image_id, reused = _import(client, tarball, tag)
    notes = ("no OpenRC: builds from it run the agent from busybox init's inittab (--init busybox)",)
    return BaseResult(
        tag, image_id, f"Alpine {version} minirootfs", time.monotonic() - start, cached=reused, notes=notes
    )


def _alpine_release(tarball: Path) -> str:
    import libarchive

    try:
        with libarchive.file_reader(str(tarball)) as archive:
            for entry in archive:
                if entry.pathname.lstrip("./") == "etc/alpine-release":
                    return b"".join(entry.get_blocks()).decode().strip()
    except libarchive.ArchiveError as exc:
        raise InputError(f"{tarball} is not a readable tarball: {exc}") from None
    with contextlib.suppress(OSError), gzip.open(tarball) as handle:
        handle.read(1)
    raise InputError(f"{tarball} has no etc/alpine-release: not an Alpine minirootfs")
