"""``build_rootfs``: the five steps in one call, with nothing left behind on failure."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

from nexlab import e2fsck
from nexlab.builder import engine, sizing
from nexlab.builder.allocate import DEFAULT_SIZE, allocate
from nexlab.builder.container import FinishedSetup, SetupInputs, created_setup, run_setup
from nexlab.builder.digest import PendingDigest
from nexlab.builder.init import InitSystem, parse_init
from nexlab.builder.mkfs import MkfsOptions, make_filesystem
from nexlab.builder.mount import Mount, mount, require_root
from nexlab.builder.output import Written, host_full, staged_output
from nexlab.builder.populate import DEFAULT_IMAGE, fill, setup_init, setup_inputs
from nexlab.builder.results import AllocateResult, BuildResult, MkfsResult, StepResult, UnmountResult
from nexlab.builder.service_check import service_problem
from nexlab.builder.sizing import DEFAULT_OPTIONS, check_auto
from nexlab.builder.spec import BuildSpec
from nexlab.builder.unmount import unmount
from nexlab.builder.writeback import flushing
from nexlab.errors import AgentServiceError, ImageTooSmallError, InputError
from nexlab.host import sparse
from nexlab.progress import Progress, or_default, or_logging
from nexlab.sizes import parse_size
from nexlab.slim import SlimResult
from nexlab.slim import slim as slim_tree


def build_rootfs(
    output: str | os.PathLike[str] = "rootfs.ext4",
    *,
    agent: str | os.PathLike[str],
    image: str = DEFAULT_IMAGE,
    script: str | os.PathLike[str] | None = None,
    service: str | os.PathLike[str] | None = None,
    size: int | str = DEFAULT_SIZE,
    network: str = "none",
    progress: Progress | None = None,
    reproducible: bool = False,
    source_date_epoch: int | None = None,
    init: str = "auto",
    free: int | str | None = None,
    workload: int | str | None = None,
    slim: str | Iterable[str] | None = None,
    arch: str | None = None,
) -> BuildResult:
    """Build ``output`` the nex way: allocate, mkfs, mount, populate, unmount.

    Inputs are checked before anything is created. The image is written under a
    temporary name and renamed at the end; on any failure or Ctrl-C the mount and
    loop device are released and the partial file removed. An ``output`` ending
    in ``.gz`` is gzipped.

    ``reproducible=True`` takes the no-mount path instead (``nexlab.builder.reproducible``):
    same inputs, same bytes, a manifest beside the image, and no root needed for a
    loop device; ``source_date_epoch`` pins its clock (default: the base image's
    creation time).

    ``init`` is the base's init: ``auto`` detects it (OpenRC, systemd, busybox
    init, sysvinit) and a base without one is refused before anything is made.

    ``size="auto"`` makes the smallest image that holds the content and leaves ``free``
    bytes (default 32 MiB) for nex, or room for a ``workload`` binary of that size
    (``nexlab.builder.sizing``); ``free``/``workload`` with a fixed size are refused.
    ``slim`` ("docs,man,locales,caches", "all") removes those categories before the
    image is closed (``nexlab.slim``), on either path.
    """
    spec = BuildSpec.of(
        agent,
        base=image,
        script=script,
        service=service,
        size=size,
        network=network,
        source_date_epoch=source_date_epoch,
        init=init,
        free=free,
        workload=workload,
        slim=slim,
        arch=arch,
    )
    return build(spec, output, reproducible=reproducible, progress=progress)


def build(
    spec: BuildSpec,
    output: str | os.PathLike[str] = "rootfs.ext4",
    *,
    reproducible: bool = False,
    progress: Progress | None = None,
    cache: bool = True,
) -> BuildResult:
    """``build_rootfs`` for a ``BuildSpec``: the reproducible path or the mount path.

    Without ``progress`` the build shows itself (``nexlab.progress.default_progress``):
    a widget in a notebook, a bar on a terminal, log lines otherwise. ``cache``
    (reproducible builds only): use and fill the build cache (``nexlab.cache``).
    """
    progress = or_default(progress)
    if reproducible:
        from nexlab.builder.reproducible import build_reproducible

        return build_reproducible(spec, output, progress=progress, cache=cache)
    if spec.source_date_epoch is not None:
        raise InputError("source_date_epoch applies to reproducible builds only", hint="pass reproducible=True")
    return build_mounted(spec, output, progress=progress)


def build_mounted(spec: BuildSpec, output: str | os.PathLike[str], *, progress: Progress | None = None) -> BuildResult:
    """The setup container, then the five steps through a loop mount (needs root).

    With a fixed size the host's part (allocate, mkfs, mount: ``_host_side``) runs in a
    thread while the engine creates and runs the setup container: the two only meet at
    the extraction. A setup that fails takes the image down with it (``staged_output``
    removes the file, the thread's mount is released), so nothing is left either way.
    """
    start = time.monotonic()
    progress = or_logging(progress)
    target = Path(output)
    headroom = check_auto(spec.size, spec.free, spec.workload)
    if headroom is not None and spec.slim:
        # The mount path copies everything into the image and slims it there: an image sized
        # for the slimmed content cannot take the copy, one sized for the copy is not exact.
        raise InputError(
            "--size auto with --slim needs --reproducible (the mount path slims after copying everything)",
            hint="add --reproducible, or give --size",
        )
    num_bytes = 0 if headroom is not None else parse_size(spec.size)
    arch = spec.target_arch()
    setup_inputs(spec.agent, spec.script, spec.service, arch=arch)  # fail on bad inputs before touching anything
    parse_init(spec.init)
    require_root("building through a mount")
    written = Written()
    with (
        staged_output(target, progress=progress, written=written) as staged,
        # ``--size auto`` makes the image after the setup: its content is counted first.
        _host_side(staged, num_bytes, DEFAULT_OPTIONS) if headroom is None else contextlib.nullcontext() as ahead,
    ):
        client = engine.connect(spec.engine)
        base = engine.ensure_image(client, spec.base, arch=arch)
        # The setup runs in a container created before it starts: its init is read through
        # it first; once it exited 0 it waits to be exported.
        populate_start = time.monotonic()
        with created_setup(client, base, reference=spec.base, network=spec.network) as created:
            system = setup_init(created, spec.init, spec.network, progress)
            inputs = setup_inputs(spec.agent, spec.script, spec.service, system.kind, arch=arch)
            if ahead is not None and ahead.done():
                ahead.result()  # the host's side failed already (a size mkfs refuses): say so before the setup runs
            # While the setup runs, this process only waits on the engine: the modules the
            # extraction and the service check need load meanwhile.
            warm = threading.Thread(target=_import_later_steps, name="nexlab-imports", daemon=True)
            warm.start()
            finished = run_setup(created, inputs, progress, local=True)
            warm.join()
            steps: list[StepResult | SlimResult] = []
            if ahead is not None:
                image = _report_host_side(ahead.result(), num_bytes, progress, steps)
            else:
                assert headroom is not None
                with progress.step("size", "count the content, choose the size") as step:
                    chosen = step.done(sizing.for_setup(finished, headroom))
                steps.append(chosen)
                options = replace(DEFAULT_OPTIONS, inode_count=chosen.inode_count)
                image = _host_steps(staged, chosen.size, options, progress, steps)
            unmounted, problem = _mounted_steps(
                spec, staged, image, finished, inputs, system, progress, populate_start, steps, created.release_early
            )
            steps.append(unmounted)
            if not unmounted.fsck_clean:
                raise e2fsck.Check(str(target), e2fsck.exit_status(4), unmounted.fsck_report).error()
            if problem is not None:
                raise problem
            seconds = time.monotonic() - start  # as before: the digest is not part of the build's time
    compressed = written.compressed
    if compressed is not None:
        # Its digests were taken while compressing; the compress step follows e2fsck.
        steps.append(compressed)
        seconds = time.monotonic() - start
        return BuildResult(
            seconds=seconds,
            output=target,
            size=target.stat().st_size,
            sha256=compressed.sha256,
            steps=tuple(steps),
            slim=spec.slim,
            image_sha256=compressed.image_sha256,
            compressed_sha256=compressed.sha256,
        )
    # A plain output is the staged file renamed. Its digest (~0.15 s of CPU for 200 MiB) is
    # computed when first read (nexlab.builder.digest): a plain ``nexlab build`` never waits for it.
    return BuildResult(
        seconds=seconds,
        output=target,
        size=target.stat().st_size,
        sha256=PendingDigest(target),
        steps=tuple(steps),
        slim=spec.slim,
    )


@dataclass(frozen=True)
class _Prepared:
    """The staged image made ready by ``_host_side``: allocated, formatted and mounted."""

    allocated: AllocateResult
    made: MkfsResult
    mounted: Mount


def _prepare(staged: Path, num_bytes: int, options: MkfsOptions) -> _Prepared:
    allocated = allocate(staged, num_bytes, overwrite=True)  # staged_output made it, empty
    return _Prepared(allocated, make_filesystem(staged, options), mount(staged))


@contextlib.contextmanager
def _host_side(staged: Path, num_bytes: int, options: MkfsOptions) -> Iterator[Future[_Prepared]]:
    """``_prepare`` running in a thread (one that never takes Ctrl-C: the main thread must,
    to stop the engine's side) until the block ends; its mount is released then at the
    latest, after the thread ended, also when the build failed or was interrupted."""
    running = sparse.in_background(_prepare, staged, num_bytes, options)
    try:
        yield running
    finally:
        concurrent.futures.wait([running])
        if running.exception() is None:
            running.result().mounted.release()  # a no-op when the build unmounted it


def _report_host_side(
    prepared: _Prepared, num_bytes: int, progress: Progress, steps: list[StepResult | SlimResult]
) -> Mount:
    """The host's steps that ran beside the setup, shown in their order (each with its own time)."""
    with progress.step("allocate", f"{num_bytes} bytes") as step:
        steps.append(step.done(prepared.allocated))
    with progress.step("mkfs", "mkfs.ext4") as step:
        steps.append(step.done(prepared.made))
    with progress.step("mount", "loop device") as step:
        return step.done(prepared.mounted)


def _host_steps(
    staged: Path, num_bytes: int, options: MkfsOptions, progress: Progress, steps: list[StepResult | SlimResult]
) -> Mount:
    """Allocate, mkfs and mount one after the other (``--size auto``: after the count)."""
    with progress.step("allocate", f"{num_bytes} bytes") as step:
        steps.append(step.done(allocate(staged, num_bytes, overwrite=True)))  # staged_output made it, empty
    with progress.step("mkfs", "mkfs.ext4") as step:
        steps.append(step.done(make_filesystem(staged, options)))
    with progress.step("mount", "loop device") as step:
        return step.done(mount(staged))


def _import_later_steps() -> None:
    import importlib

    for name in ("libarchive", "nexlab.audit.findings", "nexlab.audit.inventory", "nexlab.image.model"):
        try:
            importlib.import_module(name)
        except Exception:  # the step that needs it says what is wrong, in the main thread
            return


def _mounted_steps(
    spec: BuildSpec,
    staged: Path,
    image: Mount,
    finished: FinishedSetup,
    inputs: SetupInputs,
    system: InitSystem,
    progress: Progress,
    populate_start: float,
    steps: list[StepResult | SlimResult],
    release_container: Callable[[], None],
) -> tuple[UnmountResult, AgentServiceError | None]:
    """Fill the mounted image from the finished setup container, check, unmount, e2fsck.

    Returns the unmount's result and the service check's problem, which the caller raises
    after e2fsck's."""
    with image as mounted:
        with progress.step("populate", f"export of the setup container of {spec.base}") as step:
            try:
                steps.append(step.done(fill(mounted, finished, inputs, progress=progress, started=populate_start)))
            except ImageTooSmallError:
                # No space in the image may be no space on the host under the sparse file.
                host = host_full(staged)
                if host is not None:
                    raise host from None
                raise
        # Its filesystem is in the image: the engine removes the container while the rest runs.
        release_container()
        if spec.slim:
            with progress.step("slim", ", ".join(spec.slim)) as step:
                steps.append(step.done(slim_tree(mounted.path, spec.slim)))
        # Checked on the mounted tree (cheaper than reading the image again), raised after
        # e2fsck as before: a damaged filesystem is the first thing to say. Meanwhile the
        # image's dirty blocks are written out, so umount finds little left to do.
        with flushing(mounted):
            problem = service_problem(mounted.path, system.kind)
        with progress.step("unmount", "umount + e2fsck -fn") as step:
            unmounted = step.done(unmount(mounted))
    return unmounted, problem
