"""Step 4: fill the mounted filesystem from a container of the base image.

The setup container changes its own root; its filesystem (read from its layers
on this host when possible, ``nexlab.builder.layers``, else the engine's export) is then
extracted into the mount (``nexlab.builder.extract``), keeping only what a guest
needs. ``populate`` does both; ``build_mounted`` runs the container while the
image is made and mounted beside it (a fixed size; ``--size auto`` makes it after
the setup, from the counted content) and calls ``fill`` once both are ready.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING

from nexlab.builder import engine
from nexlab.builder.container import (
    SETUP_SHARE,
    ContentTooLargeError,
    CreatedSetup,
    FinishedSetup,
    SetupInputs,
    created_setup,
    default_service,
    run_setup,
)
from nexlab.builder.extract import extract
from nexlab.builder.init import InitKind, InitSystem, choose, detect, detect_in, parse_init
from nexlab.builder.inputs import DEFAULT_IMAGE, check_agent, regular_file, target_arch
from nexlab.builder.layers import Unavailable, container_stream, image_root
from nexlab.builder.mount import Mount
from nexlab.builder.results import PopulateResult
from nexlab.builder.sizing import size_for_content
from nexlab.builder.writeback import writing_back
from nexlab.errors import ImageTooSmallError, InputError
from nexlab.progress import Progress, Step, or_default, or_logging

if TYPE_CHECKING:
    import docker
    from docker.models.images import Image

log = logging.getLogger("nexlab.layers")


def setup_inputs(
    agent: str | os.PathLike[str],
    script: str | os.PathLike[str] | None,
    service: str | os.PathLike[str] | None,
    init: InitKind = InitKind.OPENRC,
    arch: str | None = None,
) -> SetupInputs:
    return SetupInputs(
        agent=check_agent(agent, arch),
        service=regular_file(service, "service") if service is not None else default_service(init),
        script=regular_file(script, "script") if script is not None else None,
        init=init,
    )


def base_init(
    client: docker.DockerClient, base: Image, reference: str, init: str, network: str, progress: Progress
) -> InitSystem:
    """The init to build for: ``--init``'s (``auto`` detects it from the base), refused if unusable."""
    requested = parse_init(init)
    system = choose(detect(client, base, reference), requested, reference, network)
    progress.log_line(f"init: {system.evidence}")
    return system


def setup_init(created: CreatedSetup, init: str, network: str, progress: Progress) -> InitSystem:
    """``base_init`` read through the build's own setup container, before it starts: from its
    layers mounted on this host when possible, else through the engine's archive API."""
    import docker.errors

    requested = parse_init(init)
    try:
        with image_root(created.container) as root:
            detected = detect_in(created.container, created.reference, root=root)
    except (Unavailable, docker.errors.DockerException, OSError) as exc:
        log.debug("the base's layers cannot be read here (%s): asking the engine", exc)
        detected = detect_in(created.container, created.reference)
    system = choose(detected, requested, created.reference, network)
    progress.log_line(f"init: {system.evidence}")
    return system


def populate(
    mount: Mount,
    *,
    agent: str | os.PathLike[str],
    image: str = DEFAULT_IMAGE,
    script: str | os.PathLike[str] | None = None,
    service: str | os.PathLike[str] | None = None,
    network: str = "none",
    init: str | InitSystem = "auto",
    progress: Progress | None = None,
    client: docker.DockerClient | None = None,
    arch: str | None = None,
) -> PopulateResult:
    """Run the setup in a container of the base ``image`` and extract a bootable system into the mount.

    ``network`` is the container's Docker network; the default ``none`` suits
    bases that already hold OpenRC. Use ``"bridge"`` when ``--script`` or the
    setup must download packages. ``init`` is ``auto`` (detected from the base)
    or one of ``openrc``, ``systemd``, ``busybox``, ``sysvinit`` (or an
    ``InitSystem`` a caller already resolved with ``base_init``).
    """
    if not mount.mounted:
        raise InputError(f"{mount.image} is not mounted any more")
    start = time.monotonic()
    # A progress of its own (the default: a widget in a notebook) shows this as one step;
    # a caller's progress shows it within the caller's own step.
    own = progress is None
    progress = or_default(progress)
    arch = target_arch(agent, arch)
    setup_inputs(agent, script, service, arch=arch)
    client = client or engine.connect()
    base = engine.ensure_image(client, image, arch=arch)
    with (
        progress.step("populate", f"container of {image}") if own else contextlib.nullcontext(Step("populate")) as step,
        created_setup(client, base, reference=image, network=network) as created,
    ):
        system = init if isinstance(init, InitSystem) else setup_init(created, init, network, progress)
        inputs = setup_inputs(agent, script, service, system.kind, arch=arch)
        finished = run_setup(created, inputs, progress, local=True)
        return step.done(fill(mount, finished, inputs, progress=progress, started=start))


def fill(
    mount: Mount,
    finished: FinishedSetup,
    inputs: SetupInputs,
    *,
    progress: Progress | None = None,
    started: float | None = None,
) -> PopulateResult:
    """Extract the finished setup container's filesystem into ``mount``."""
    start = time.monotonic() if started is None else started
    progress = or_logging(progress)
    total = finished.image_bytes

    def copied(done: int) -> None:
        # The image's size only approximates what is kept (caches are left out): never claim the end.
        share = min(done / total, 0.99) if total else 0.0
        progress.fraction(
            SETUP_SHARE + (1 - SETUP_SHARE) * share, f"copy {done / 2**20:.0f} of ~{total / 2**20:.0f} MiB"
        )

    try:
        with container_stream(finished) as source, writing_back(mount):
            extract(source, mount.path, as_root=True, on_bytes=copied)
    except ContentTooLargeError as exc:
        raise too_small(mount.image.stat().st_size, exc.content_bytes, exc.content_files) from None
    progress.fraction(1.0, "done")
    used, free = mount.usage()
    return PopulateResult(
        seconds=time.monotonic() - start,
        base_image=finished.image,
        base_image_id=finished.image_id,
        agent=inputs.agent,
        script=inputs.script,
        service=inputs.service,
        used_bytes=used,
        free_bytes=free,
        files=mount.inodes_used(),
        output_tail=finished.output_tail,
        init=inputs.init.value,
    )


def too_small(size: int, content_bytes: int, content_files: int, where: str | None = None) -> ImageTooSmallError:
    """Say how large the image must be for content that did not fit."""
    needed = size_for_content(content_bytes, content_files)
    return ImageTooSmallError(
        f"{where or f'{size // 2**20} MiB'} is too small: the content is {content_bytes / 2**20:.1f} MiB "
        f"in {content_files} files; use --size {needed // 2**20}MiB or more, or --size auto",
        needed_bytes=needed,
    )
