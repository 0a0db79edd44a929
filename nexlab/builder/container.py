"""Run nexlab's setup script in a container of the base image, in place (the nex recipe).

The container changes its own root: the setup script, the agent
(``/usr/local/bin/agent``), its service where the base's init wants it
(``nexlab.builder.init.SERVICE_PATHS``) and the user's script go in through the
engine's archive API before it starts, and the result comes out through
``export`` (``nexlab.builder.extract``). Nothing is bind-mounted, so the engine
need not share this host's disk. The container's output streams line by line to
``Progress`` as it runs; the container is removed on any exit, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import tarfile
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.builder import engine
from nexlab.builder.init import SERVICE_ASSETS, SERVICE_PATHS, InitKind
from nexlab.errors import BaseImageError, ContainerFailedError, DockerError
from nexlab.host import owned
from nexlab.progress import Progress

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container
    from docker.models.images import Image

_STEP = re.compile(r"^nexlab-step: (\d+)/(\d+) (.*)$")
#: Steps 1-5 run in the container; the last one (export) runs here.
STEPS = 6
#: The share of the populate bar the setup's steps fill; the copy (in bytes) fills the rest.
SETUP_SHARE = 0.4


class ContentTooLargeError(Exception):
    """The content did not fit; the caller knows the filesystem and words the error.

    ``content_bytes`` and ``content_files`` count everything the image would hold
    (data blocks without holes, directory, extent and xattr blocks; inodes).
    """

    def __init__(self, *, content_bytes: int, content_files: int) -> None:
        super().__init__(f"{content_bytes} bytes in {content_files} files do not fit")
        self.content_bytes = content_bytes
        self.content_files = content_files


@dataclass(frozen=True)
class SetupInputs:
    agent: Path
    service: Path
    script: Path | None
    #: The base's init (nexlab.builder.init): where the service goes and how setup.sh enables it.
    init: InitKind = InitKind.OPENRC

    @property
    def service_target(self) -> str:
        return SERVICE_PATHS[self.init]


@dataclass(frozen=True)
class FinishedSetup:
    """A setup container that exited 0: its filesystem is the new root, ready to export."""

    container: Container
    image: str
    image_id: str
    output_tail: tuple[str, ...]
    #: The base image's size (the engine's ``Size``): what the copy's bar counts against.
    image_bytes: int = 0


def default_service(init: InitKind = InitKind.OPENRC) -> Path:
    return Path(str(resources.files("nexlab.builder.assets") / SERVICE_ASSETS[init]))


def setup_script() -> Path:
    return Path(str(resources.files("nexlab.builder.assets") / "setup.sh"))


def input_files(inputs: SetupInputs, *, staged: bool = False) -> list[tuple[str, bytes, int, int]]:
    """``(path, data, mode, mtime)`` of the files the container needs (root-owned, fixed names).

    ``staged``: the agent and its service go to /nexlab too (``nexlab/agent``, ``nexlab/service``)
    and setup.sh moves them where they belong, for a caller that writes the files into the
    container's own layer (``nexlab.builder.layers.place_inputs``): the container's overlay
    then copies up their parent directories as the engine's ``put_archive`` would.
    """
    agent_path = "nexlab/agent" if staged else "usr/local/bin/agent"
    service_path = "nexlab/service" if staged else inputs.service_target.lstrip("/")
    members: list[tuple[str, Path, int]] = [
        ("nexlab/setup.sh", setup_script(), 0o755),
        (agent_path, inputs.agent, 0o755),
        # A systemd unit is configuration (0644); the other inits run the file.
        (service_path, inputs.service, 0o644 if inputs.init is InitKind.SYSTEMD else 0o755),
    ]
    if inputs.script is not None:
        members.append(("nexlab/user-script", inputs.script, 0o644))
    files = [(name, source.read_bytes(), mode, int(source.stat().st_mtime)) for name, source, mode in members]
    # Sourced by setup.sh: the init is known only after the container was created.
    settings = (
        f"export NEXLAB_INIT={shlex.quote(inputs.init.value)} NEXLAB_SERVICE={shlex.quote(inputs.service_target)}\n"
    )
    files.append(("nexlab/env", settings.encode(), 0o644, int(setup_script().stat().st_mtime)))
    return files


def inputs_archive(inputs: SetupInputs) -> bytes:
    """The files the container needs, as a tar for ``put_archive``.

    Only files, no directory entries: the engine creates missing parents, and an
    entry for ``etc/init.d`` would re-stamp the base's own directory.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data, mode, mtime in input_files(inputs):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, mtime
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _reason(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None) or str(exc)
    text = explanation.decode("utf-8", "replace") if isinstance(explanation, bytes) else str(explanation)
    return " ".join(text.split())[:300]


def _start_error(reference: str, exc: Exception) -> DockerError:
    """One line for a container the engine cannot start (no shell, a broken base)."""
    reason = _reason(exc)
    if "/bin/sh" in reason and ("no such file" in reason.lower() or "not found" in reason.lower()):
        return BaseImageError(
            f"base image {reference} has no /bin/sh: nexlab's setup script needs a POSIX shell",
            hint="use a base with a shell (busybox, dash or bash at /bin/sh)",
        )
    return BaseImageError(f"the setup container of {reference} cannot start: {reason}")


class _Removal:
    """The container's removal, exactly once: begun early in a thread (``CreatedSetup.release_early``)
    or at the end of ``created_setup``, which waits for it either way (a build's caller, and
    the tests' leftover count, must find the container gone)."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def begin(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._remove, name="nexlab-remove", daemon=True)
                self._thread.start()

    def finish(self) -> None:
        self.begin()
        assert self._thread is not None
        self._thread.join()

    def _remove(self) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.DockerException):
            self._container.remove(force=True)


@dataclass(frozen=True)
class CreatedSetup:
    """A setup container created (never started yet): the base's files can be read through it."""

    container: Container
    image: Image
    reference: str
    removal: _Removal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "removal", _Removal(self.container))

    def release_early(self) -> None:
        """Begin removing the container now, in a thread: its filesystem was read and nothing
        needs it any more (the engine's work then overlaps the rest of the build)."""
        self.removal.begin()


@contextlib.contextmanager
def created_setup(
    client: docker.DockerClient,
    image: Image,
    *,
    reference: str | None = None,
    environment: Mapping[str, str] | None = None,
    network: str = "none",
) -> Iterator[CreatedSetup]:
    """A container of ``image`` that will run setup.sh (``run_setup``), removed on any exit.

    The init and its service path go in with the setup files (``/nexlab/env``), not
    in the container's environment: the init is read from this very container first
    (``nexlab.builder.init.detect_in``), so a build creates one container, not two.
    """
    import docker.errors

    reference = reference or image.id
    try:
        container = client.containers.create(
            image.id,
            entrypoint=["/bin/sh"],
            command=["/nexlab/setup.sh"],
            environment={"NEXLAB_NETWORK": network, **(environment or {})},
            network_mode=network,
            user="0:0",
            working_dir="/",
            labels=owned.labels("populate"),
            # An arm64 base on an amd64 host runs under qemu-user-static (binfmt_misc).
            platform=engine.platform_of(image),
        )
    except docker.errors.DockerException as exc:
        raise DockerError(f"cannot create the setup container of {reference}: {_reason(exc)}") from None
    created = CreatedSetup(container=container, image=image, reference=reference)
    try:
        yield created
    finally:
        created.removal.finish()


def run_setup(created: CreatedSetup, inputs: SetupInputs, progress: Progress, *, local: bool = False) -> FinishedSetup:
    """Copy the setup files in, run setup.sh to its end; the container then waits, exited 0.

    ``local`` (the mount build): write the files straight into the container's layer when
    the engine keeps it on this host (``layers.place_inputs``; the engine's ``put_archive``
    took 0.06-0.08 s, a program of its own in a chroot), else through the engine.
    """
    import docker.errors

    from nexlab.builder.layers import place_inputs

    container, reference = created.container, created.reference
    try:
        if not (local and place_inputs(container, input_files(inputs, staged=True))):
            container.put_archive("/", inputs_archive(inputs))
    except docker.errors.DockerException as exc:
        raise BaseImageError(
            f"cannot copy nexlab's setup files into a container of {reference}: {_reason(exc)}"
        ) from None
    try:
        container.start()
    except docker.errors.DockerException as exc:
        raise _start_error(reference, exc) from None
    tail = _follow(container, progress)
    status = container.wait()
    exit_code = int(status.get("StatusCode", -1))
    if exit_code != 0:
        last = next((line for line in reversed(tail) if line.strip()), "")
        raise ContainerFailedError(
            f"the setup container exited with status {exit_code}: {last}",
            exit_code=exit_code,
            log_tail=list(tail),
        )
    progress.fraction(SETUP_SHARE, "export")
    return FinishedSetup(
        container=container,
        image=reference,
        image_id=created.image.id,
        output_tail=tuple(tail),
        image_bytes=int(created.image.attrs.get("Size") or 0),
    )


@contextlib.contextmanager
def setup_container(
    client: docker.DockerClient,
    image: Image,
    inputs: SetupInputs,
    progress: Progress,
    *,
    reference: str | None = None,
    environment: Mapping[str, str] | None = None,
    network: str = "none",
) -> Iterator[FinishedSetup]:
    """Run setup.sh in a container of ``image``; yield it, exited 0, until the block ends."""
    with created_setup(client, image, reference=reference, environment=environment, network=network) as created:
        yield run_setup(created, inputs, progress)


def _follow(container: Container, progress: Progress) -> deque[str]:
    tail: deque[str] = deque(maxlen=40)
    for line in _lines(container.logs(stream=True, follow=True)):
        tail.append(line)
        step = _STEP.match(line)
        if step:
            done, total, text = int(step.group(1)), int(step.group(2)), step.group(3)
            progress.fraction(SETUP_SHARE * (done - 1) / (total - 1 or 1), text)
        progress.log_line(line)
    return tail


def export_stream(finished: FinishedSetup, chunk_size: int = 2**20) -> Iterator[bytes]:
    """The container's whole filesystem as a tar stream, from the engine."""
    import docker.errors

    try:
        yield from finished.container.export(chunk_size=chunk_size)
    except docker.errors.DockerException as exc:
        raise DockerError(f"cannot export the setup container's filesystem: {_reason(exc)}") from None


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", "replace")
