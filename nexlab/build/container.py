"""Run nexlab's setup script in a container of the base image (the nex recipe).

The target directory is bind-mounted at ``/my-rootfs``, the agent at
``/usr/local/bin/agent`` and its service where the base's init wants it; the
container's output streams line by line to ``Progress`` as it runs. The
container is always removed, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.build.init import SERVICE_ASSETS, SERVICE_PATHS, InitKind
from nexlab.errors import ContainerFailedError, DockerError
from nexlab.progress import Progress

if TYPE_CHECKING:
    import docker
    from docker.models.images import Image

ROOTFS_IN_CONTAINER = "/my-rootfs"
_STEP = re.compile(r"^nexlab-step: (\d+)/(\d+) (.*)$")
_NEEDS = re.compile(r"^nexlab-needs: (\d+) (\d+)$")
_EXIT_TOO_SMALL = 75


class ContentTooLargeError(Exception):
    """The copy ran out of space or inodes; the caller knows the filesystem and words the error."""

    def __init__(self, *, content_bytes: int, content_files: int) -> None:
        super().__init__(f"{content_bytes} bytes in {content_files} files do not fit")
        self.content_bytes = content_bytes
        self.content_files = content_files


@dataclass(frozen=True)
class SetupInputs:
    agent: Path
    service: Path
    script: Path | None
    #: The base's init (nexlab.build.init): where the service goes and how setup.sh enables it.
    init: InitKind = InitKind.OPENRC

    @property
    def service_target(self) -> str:
        return SERVICE_PATHS[self.init]


def default_service(init: InitKind = InitKind.OPENRC) -> Path:
    return Path(str(resources.files("nexlab.build.assets") / SERVICE_ASSETS[init]))


@contextlib.contextmanager
def _script_dir(script: Path | None) -> Iterator[Path]:
    """A private directory with setup.sh and the user's script, mounted at /nexlab."""
    workdir = Path(tempfile.mkdtemp(prefix="nexlab-setup-"))
    try:
        os.chmod(workdir, 0o755)
        shutil.copyfile(str(resources.files("nexlab.build.assets") / "setup.sh"), workdir / "setup.sh")
        if script is not None:
            shutil.copyfile(script, workdir / "user-script")
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_setup(
    client: docker.DockerClient,
    image: Image,
    target: Path,
    inputs: SetupInputs,
    progress: Progress,
    *,
    environment: Mapping[str, str] | None = None,
    network: str = "none",
) -> tuple[str, ...]:
    """Run setup.sh in ``image`` with ``target`` as the new root; returns the output's last lines."""
    import docker.errors

    tail: deque[str] = deque(maxlen=40)
    needs: tuple[int, int] | None = None
    with _script_dir(inputs.script) as scripts:
        volumes = {
            str(target): {"bind": ROOTFS_IN_CONTAINER, "mode": "rw"},
            str(inputs.agent): {"bind": "/usr/local/bin/agent", "mode": "ro"},
            str(inputs.service): {"bind": inputs.service_target, "mode": "ro"},
            str(scripts): {"bind": "/nexlab", "mode": "ro"},
        }
        try:
            container = client.containers.create(
                image.id,
                entrypoint=["/bin/sh"],
                command=["/nexlab/setup.sh"],
                volumes=volumes,
                environment={
                    "NEXLAB_ROOTFS": ROOTFS_IN_CONTAINER,
                    "NEXLAB_NETWORK": network,
                    "NEXLAB_INIT": inputs.init.value,
                    "NEXLAB_SERVICE": inputs.service_target,
                    **(environment or {}),
                },
                network_mode=network,
                user="0:0",
                working_dir="/",
                labels={"org.nexlab.role": "populate"},
            )
        except docker.errors.DockerException as exc:
            raise DockerError(f"cannot create the setup container: {exc}") from None
        try:
            container.start()
            for line in _lines(container.logs(stream=True, follow=True)):
                tail.append(line)
                step = _STEP.match(line)
                needs_match = _NEEDS.match(line)
                if step:
                    done, total, text = int(step.group(1)), int(step.group(2)), step.group(3)
                    progress.fraction((done - 1) / total, text)
                elif needs_match:
                    needs = (int(needs_match.group(1)) * 1024, int(needs_match.group(2)))
                progress.log_line(line)
            status = container.wait()
        finally:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
    exit_code = int(status.get("StatusCode", -1))
    if exit_code == _EXIT_TOO_SMALL and needs is not None:
        raise ContentTooLargeError(content_bytes=needs[0], content_files=needs[1])
    if exit_code != 0:
        last = next((line for line in reversed(tail) if line.strip()), "")
        raise ContainerFailedError(
            f"the setup container exited with status {exit_code}: {last}",
            exit_code=exit_code,
            log_tail=list(tail),
        )
    progress.fraction(1.0, "done")
    return tuple(tail)


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", "replace")
