"""The Docker engine, through the docker SDK: connect, find or pull an image, check its architecture."""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Mapping
from typing import TYPE_CHECKING

from nexlab.errors import ArchitectureError, BaseImageError, DockerUnavailableError

if TYPE_CHECKING:
    import docker
    from docker.models.images import Image

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


def connect(timeout: float = 30) -> docker.DockerClient:
    """A client that has answered a ping, or ``DockerUnavailableError``."""
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=timeout, version=_api_version(timeout))
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(
            f"cannot reach the Docker engine at {engine_address()}",
            hint="start dockerd (make setup does) or set DOCKER_HOST",
        ) from exc
    return client


#: Where the docker SDK looks when DOCKER_HOST is not set.
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def engine_address(environ: Mapping[str, str] = os.environ) -> str:
    """The engine the SDK tried, as the error names it: DOCKER_HOST's value, or the default socket."""
    host = environ.get("DOCKER_HOST", "")
    return f"DOCKER_HOST={host}" if host else f"the default socket {DEFAULT_SOCKET} (DOCKER_HOST is not set)"


#: What the SDK needs at least; only asked for the engine's own version.
_MIN_API = "1.24"


def _api_version(timeout: float) -> str | None:
    """The engine's API version from a ping (its ``Api-Version`` header), None when it says none.

    The SDK's own negotiation asks ``/version``, which the engine answers by running
    its runtimes (~0.2 s here): every build, and the reaper before it, paid that.
    A failed ping raises, as ``ping()`` did.
    """
    import docker
    import docker.errors

    probe = docker.from_env(timeout=timeout, version=_MIN_API)
    try:
        response = probe.api.get(probe.api.base_url + "/_ping", timeout=timeout)
        if response.status_code != 200:
            raise docker.errors.APIError(f"ping answered {response.status_code}", response=response)
        return response.headers.get("Api-Version") or None
    except OSError as exc:  # requests' ConnectionError is one
        raise docker.errors.DockerException(f"cannot reach the engine: {exc}") from exc
    finally:
        probe.close()


def ensure_image(client: docker.DockerClient, reference: str, *, pull: bool = True) -> Image:
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
    check_architecture(image, reference)
    return image


def check_architecture(image: Image, reference: str) -> None:
    arch = image.attrs.get("Architecture") or ""
    host = host_architecture()
    if arch and arch != host:
        raise ArchitectureError(
            f"base image {reference} is for {arch}, but this host and its Firecracker guests are {host}",
        )
