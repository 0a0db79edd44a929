"""``build_rootfs``: the five steps in one call, with nothing left behind on failure."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from nexlab.builder import engine
from nexlab.builder.allocate import DEFAULT_SIZE, allocate
from nexlab.builder.container import FinishedSetup, SetupInputs, created_setup, run_setup
from nexlab.builder.init import InitSystem, parse_init
from nexlab.builder.mkfs import mkfs
from nexlab.builder.mount import mount, require_root
from nexlab.builder.output import host_full, sha256_file, staged_output
from nexlab.builder.populate import DEFAULT_IMAGE, fill, setup_init, setup_inputs
from nexlab.builder.results import BuildResult, StepResult
from nexlab.builder.service_check import service_problem
from nexlab.builder.spec import BuildSpec
from nexlab.builder.unmount import unmount
from nexlab.errors import CommandError, ImageTooSmallError, InputError
from nexlab.progress import Progress, resolve
from nexlab.sizes import parse_size


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
    """
    spec = BuildSpec.of(agent, image, script, service, size, network, source_date_epoch, init)
    return build(spec, output, reproducible=reproducible, progress=progress)


def build(
    spec: BuildSpec,
    output: str | os.PathLike[str] = "rootfs.ext4",
    *,
    reproducible: bool = False,
    progress: Progress | None = None,
) -> BuildResult:
    """``build_rootfs`` for a ``BuildSpec``: the reproducible path or the mount path."""
    if reproducible:
        from nexlab.builder.reproducible import build_reproducible

        return build_reproducible(spec, output, progress=progress)
    if spec.source_date_epoch is not None:
        raise InputError("source_date_epoch applies to reproducible builds only", hint="pass reproducible=True")
    return build_mounted(spec, output, progress=progress)


def build_mounted(spec: BuildSpec, output: str | os.PathLike[str], *, progress: Progress | None = None) -> BuildResult:
    """The setup container, then the five steps through a loop mount (needs root)."""
    start = time.monotonic()
    report = resolve(progress)
    target = Path(output)
    num_bytes = parse_size(spec.size)
    setup_inputs(spec.agent, spec.script, spec.service)  # fail on bad inputs before touching anything
    parse_init(spec.init)
    require_root("building through a mount")
    client = engine.connect()
    base = engine.ensure_image(client, spec.image)

    # The setup runs before the image exists: a base that cannot be set up fails
    # before anything is allocated, and its container waits, exited, to be exported.
    # Its init is read through the same container before it starts.
    populate_start = time.monotonic()
    with created_setup(client, base, reference=spec.image, network=spec.network) as created:
        system = setup_init(created, spec.init, spec.network, report)
        inputs = setup_inputs(spec.agent, spec.script, spec.service, system.kind)
        # While the setup runs, this process only waits on the engine: the modules the
        # extraction and the service check need load meanwhile.
        warm = threading.Thread(target=_import_later_steps, name="nexlab-imports", daemon=True)
        warm.start()
        finished = run_setup(created, inputs, report)
        warm.join()
        return _mounted_steps(spec, target, num_bytes, finished, inputs, system, report, start, populate_start)


def _import_later_steps() -> None:
    import importlib

    for name in ("libarchive", "nexlab.audit.findings", "nexlab.audit.inventory", "nexlab.image.model"):
        try:
            importlib.import_module(name)
        except Exception:  # the step that needs it says what is wrong, in the main thread
            return


def _mounted_steps(
    spec: BuildSpec,
    target: Path,
    num_bytes: int,
    finished: FinishedSetup,
    inputs: SetupInputs,
    system: InitSystem,
    report: Progress,
    start: float,
    populate_start: float,
) -> BuildResult:
    """Allocate, mkfs, mount, fill from the finished setup container, unmount, check."""
    steps: list[StepResult] = []
    with staged_output(target) as staged:
        report.step_started("allocate", f"{num_bytes} bytes")
        steps.append(allocate(staged, num_bytes, overwrite=True))  # staged_output made it, empty
        report.step_finished("allocate", steps[-1])
        report.step_started("mkfs", "mkfs.ext4")
        steps.append(mkfs(staged))
        report.step_finished("mkfs", steps[-1])
        report.step_started("mount", "loop device")
        with mount(staged) as mounted:
            report.step_finished("mount", mounted)
            report.step_started("populate", f"export of the setup container of {spec.image}")
            try:
                steps.append(fill(mounted, finished, inputs, progress=report, started=populate_start))
            except ImageTooSmallError:
                # No space in the image may be no space on the host under the sparse file.
                host = host_full(staged)
                if host is not None:
                    raise host from None
                raise
            report.step_finished("populate", steps[-1])
            # Checked on the mounted tree (cheaper than reading the image again), raised after
            # e2fsck as before: a damaged filesystem is the first thing to say.
            problem = service_problem(mounted.path, system.kind)
            report.step_started("unmount", "umount + e2fsck -fn")
            unmounted = unmount(mounted)
        steps.append(unmounted)
        report.step_finished("unmount", unmounted)
        if not unmounted.fsck_clean:
            raise CommandError(["e2fsck", "-fn", str(target)], 4, "\n".join(unmounted.fsck_report))
        if problem is not None:
            raise problem
    final = target
    return BuildResult(
        seconds=time.monotonic() - start,
        output=final,
        size=final.stat().st_size,
        sha256=sha256_file(final),
        steps=tuple(steps),
    )
