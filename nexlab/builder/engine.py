"""The Docker engine, through the docker SDK: which one (``--engine``), connect, find or pull an
image, check its architecture."""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nexlab.errors import ArchitectureError, BaseImageError, DockerUnavailableError, InputError

if TYPE_CHECKING:
    import docker
    from docker.models.images import Image
    from docker.tls import TLSConfig

log = logging.getLogger("nexlab.engine")

#: uname -m -> the GOARCH-style names Docker uses for image architectures.
_DOCKER_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


def host_architecture() -> str:
    machine = platform.machine()
    return _DOCKER_ARCH.get(machine, machine)


@dataclass(frozen=True)
class Engine:
    """Where a Docker engine answers: a ``DOCKER_HOST``-style URL and its TLS settings.

    ``name`` is what the user gave (a context name, a URL, or "" for the environment's).
    """

    name: str
    base_url: str | None = None
    tls: TLSConfig | bool | None = None

    @property
    def label(self) -> str:
        return self.name or os.environ.get("DOCKER_HOST", "") or "local"


#: Schemes ``--engine`` takes as a URL; anything else is a docker context's name.
_SCHEMES = ("tcp://", "unix://", "ssh://", "http://", "https://", "npipe://")


def resolve(engine: str | Engine | None) -> Engine:
    """``--engine``'s value: None or "" (``DOCKER_HOST``, else the local socket), a URL
    (``tcp://``, ``ssh://``, ``unix://``; TLS from ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``),
    or the name of a docker context (``~/.docker/contexts``, its TLS material included)."""
    if isinstance(engine, Engine):
        return engine
    if not engine:
        return Engine("")
    if engine.startswith(_SCHEMES):
        return _from_url(engine)
    return _from_context(engine)


def _from_url(url: str) -> Engine:
    import docker.errors
    import docker.utils

    try:
        # The environment's TLS settings, for this URL instead of DOCKER_HOST.
        kwargs = docker.utils.kwargs_from_env(environment={**os.environ, "DOCKER_HOST": url})
    except docker.errors.DockerException as exc:
        raise InputError(f"--engine {url}: {exc}") from None
    return Engine(url, base_url=url, tls=kwargs.get("tls"))


def _from_context(name: str) -> Engine:
    import docker.errors
    from docker.context import ContextAPI

    try:
        context = ContextAPI.get_context(name)
    except docker.errors.DockerException as exc:
        raise InputError(f"cannot read docker context {name}: {exc}") from None
    if context is None:
        known = ", ".join(sorted(c.Name for c in _contexts())) or "none"
        raise InputError(
            f"no docker context named {name} (known: {known})",
            hint="give a context name (docker context ls) or a URL: tcp://HOST:2376, ssh://USER@HOST, unix:///PATH",
        )
    if name == "default" or not context.Host:
        return Engine(name)
    return Engine(name, base_url=context.Host, tls=context.TLSConfig or None)


def _contexts() -> list[Any]:
    import docker.errors
    from docker.context import ContextAPI

    try:
        return list(ContextAPI.contexts())
    except docker.errors.DockerException:
        return []


def connect(engine: str | Engine | None = None, timeout: float = 30) -> docker.DockerClient:
    """A client of ``engine`` (``resolve``) that has answered a ping, or ``DockerUnavailableError``."""
    import docker
    import docker.errors

    where = resolve(engine)
    try:
        client = _client(where, timeout, _api_version(where, timeout))
    except docker.errors.DockerException as exc:
        if not where.name:
            raise DockerUnavailableError(
                f"cannot reach the Docker engine at {engine_address()}",
                hint="start dockerd (make setup does) or set DOCKER_HOST",
            ) from exc
        raise DockerUnavailableError(
            f"cannot reach the Docker engine {where.label} ({_first_line(exc)})",
            hint="check that the engine runs and listens there (docker context ls)",
        ) from exc
    return client


#: Where the docker SDK looks when DOCKER_HOST is not set.
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def engine_address(environ: Mapping[str, str] = os.environ) -> str:
    """The engine the SDK tried, as the error names it: DOCKER_HOST's value, or the default socket."""
    host = environ.get("DOCKER_HOST", "")
    return f"DOCKER_HOST={host}" if host else f"the default socket {DEFAULT_SOCKET} (DOCKER_HOST is not set)"


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


def _client(where: Engine, timeout: float, version: str | None) -> docker.DockerClient:
    import docker

    if where.base_url is None:
        return docker.from_env(timeout=timeout, version=version)
    # No paramiko here: ssh:// goes through the ssh command, as the docker CLI does.
    return docker.DockerClient(
        base_url=where.base_url,
        tls=where.tls or False,
        timeout=int(timeout),
        version=version,
        use_ssh_client=where.base_url.startswith("ssh://"),
    )


def is_local(client: docker.DockerClient) -> bool:
    """True when the engine answers on a Unix socket of this host, so its data root is here
    (``nexlab.builder.layers`` needs that); a TCP or SSH engine may be another machine."""
    base_url = str(getattr(client.api, "base_url", ""))
    return base_url.startswith("http+docker://local") and base_url != "http+docker://localnpipe"


#: What the SDK needs at least; only asked for the engine's own version.
_MIN_API = "1.24"


def _api_version(where: Engine, timeout: float) -> str | None:
    """The engine's API version from a ping (its ``Api-Version`` header), None when it says none.

    The SDK's own negotiation asks ``/version``, which the engine answers by running
    its runtimes (~0.2 s here): every build, and the reaper before it, paid that.
    A failed ping raises, as ``ping()`` did.
    """
    import docker
    import docker.errors

    probe = _client(where, timeout, _MIN_API)
    try:
        response = probe.api.get(probe.api.base_url + "/_ping", timeout=timeout)
        if response.status_code != 200:
            raise docker.errors.APIError(f"ping answered {response.status_code}", response=response)
        return response.headers.get("Api-Version") or None
    except OSError as exc:  # requests' ConnectionError is one
        raise docker.errors.DockerException(f"cannot reach the engine: {exc}") from exc
    finally:
        probe.close()


def ensure_image(client: docker.DockerClient, reference: str, *, pull: bool = True, arch: str | None = None) -> Image:
    """The image ``reference``, pulled only when it is not present locally."""
    import docker.errors

    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        if not pull:
            raise BaseImageError(f"base image {reference} is not present locally") from None
        log.info("pulling %s", reference)
        try:
            image = client.images.pull(reference)
        except docker.errors.DockerException as exc:
            reason = str(exc).splitlines()[0][:200]
            raise BaseImageError(
                f"base image {reference} is not present locally and could not be pulled ({reason})",
                hint="make an offline one with: nexlab base debian",
            ) from None
    except docker.errors.DockerException as exc:
        raise BaseImageError(f"cannot inspect base image {reference}: {exc}") from None
    check_architecture(image, reference, arch)
    return image


def check_architecture(image: Image, reference: str, target: str | None = None) -> None:
    """Refuse a base whose ``Architecture`` is not ``target`` (default: the host's)."""
    arch = image.attrs.get("Architecture") or ""
    host = host_architecture()
    if target is None or target == host:
        if arch and arch != host:
            raise ArchitectureError(
                f"base image {reference} is for {arch}, but this build is for {host}",
                hint=f"pass --arch {arch} to build for {arch}" if arch in ("amd64", "arm64") else None,
            )
        return
    if arch != target:
        raise ArchitectureError(
            f"base image {reference} is for {arch or 'an unknown architecture'}, but this build is for {target}",
            hint=f"make one with: nexlab base debian --arch {target}" if target == "arm64" else None,
        )
    from nexlab.builder import binfmt

    binfmt.require(target)


def platform_of(image: Image) -> str | None:
    """``linux/ARCH`` of ``image`` for the container's ``platform`` (None: the engine's own)."""
    arch = image.attrs.get("Architecture") or ""
    return f"linux/{arch}" if arch and arch != host_architecture() else None
