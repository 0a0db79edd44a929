"""The reproducible build from scratch: steps 1 to 6 (the package's docstring), storing the
filesystem before the agent as a cache entry when asked. A build from an entry
(``build._from_cache``) imports none of this."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

from nexlab.builder import engine, sizing
from nexlab.builder.allocate import allocate
from nexlab.builder.container import ContentTooLargeError, export_stream, setup_container
from nexlab.builder.extract import extract
from nexlab.builder.init import InitKind
from nexlab.builder.manifest import BuildManifest
from nexlab.builder.mkfs import MkfsOptions, make_filesystem
from nexlab.builder.normalize import scrub
from nexlab.builder.output import Written, host_full, staged_output
from nexlab.builder.populate import base_init, setup_inputs, too_small
from nexlab.builder.reproducible import overlay
from nexlab.builder.reproducible.agent import place_agent, placeholder
from nexlab.builder.reproducible.build import (
    TREE_FIELDS,
    Records,
    Steps,
    agent_room,
    manifest_sidecar,
    result_of,
)
from nexlab.builder.reproducible.facts import check_service_with, image_records, write_records
from nexlab.builder.reproducible.inputs import collect_inputs
from nexlab.builder.reproducible.results import CacheResult, NormalizeResult, StagingResult
from nexlab.builder.reproducible.staging import staging_directory
from nexlab.builder.reproducible.times import pin_inode_times
from nexlab.builder.results import AllocateResult, BuildResult, MkfsResult, StepResult
from nexlab.builder.rootless import Owner
from nexlab.builder.sizing import DEFAULT_OPTIONS, Headroom
from nexlab.builder.spec import BuildSpec
from nexlab.cache import Cache, CorruptEntryError
from nexlab.cache.store import IMAGE
from nexlab.errors import CommandError, InputError
from nexlab.host import sparse
from nexlab.progress import Progress
from nexlab.slim import slim as slim_tree


def build(
    spec: BuildSpec,
    target: Path,
    num_bytes: int,
    headroom: Headroom | None,
    progress: Progress,
    start: float,
    client: Any,
    storing: tuple[Cache, str] | None,
) -> BuildResult:
    image, network = spec.base, spec.network
    client = client or engine.connect(spec.engine)
    arch = spec.target_arch()
    base = engine.ensure_image(client, image, arch=arch)
    system = base_init(client, base, image, spec.init, network, progress)
    setup = setup_inputs(spec.agent, spec.script, spec.service, system.kind, arch=arch)
    inputs = collect_inputs(
        image,
        base,
        setup,
        0 if headroom is not None else num_bytes,  # auto: the size chosen goes in once known
        network,
        spec.source_date_epoch,
        free=headroom.free if headroom is not None else None,
        slim=spec.slim,
    )
    the_epoch = inputs.source_date_epoch
    # The container gets a placeholder: what it makes must not depend on the agent (agent.py).
    in_container = dataclasses.replace(setup, agent=placeholder())

    steps: Steps = []
    with staging_directory(num_bytes) as staging:
        with progress.step("stage", f"setup container from {image} into a staging directory") as step:
            stage_start = time.monotonic()
            environment = {"SOURCE_DATE_EPOCH": str(the_epoch)}
            with setup_container(
                client, base, in_container, progress, reference=image, environment=environment, network=network
            ) as finished:
                try:
                    # As a normal user the tree is ours, owners and modes noted aside for debugfs.
                    staged_tree = extract(export_stream(finished), staging)
                except ContentTooLargeError as exc:
                    if os.path.ismount(staging.parent) and headroom is None:
                        # A tmpfs capped at the image's size: what does not fit it cannot fit the image.
                        raise too_small(num_bytes, exc.content_bytes, exc.content_files) from None
                    raise InputError(
                        f"the staging directory {staging.parent.parent} is full: the content is "
                        f"{exc.content_bytes / 2**20:.1f} MiB in {exc.content_files} files",
                        hint="point NEXLAB_STAGING_DIR at a directory with more room",
                    ) from None
            owners = staged_tree.owners
            used = staged_tree.content.bytes
            staged_step = StagingResult(
                seconds=time.monotonic() - stage_start,
                base_image=image,
                base_image_id=base.id,
                directory=staging,
                entries=staged_tree.content.entries,
                bytes=used,
                output_tail=finished.output_tail,
            )
            steps.append(step.done(staged_step))

        if spec.slim:
            # Before the scrub: the directories slimming touches get their mtimes clamped with the rest.
            with progress.step("slim", ", ".join(spec.slim)) as step:
                slimmed = step.done(slim_tree(staging, spec.slim))
                steps.append(slimmed)
            if owners is not None:
                # A normal user's tree: what slim wrote is root's in the image, as a root build makes it.
                owners.update({path: Owner(0, 0, 0o755) for path in slimmed.made_directories})
                owners.update({path: Owner(0, 0, 0o644) for path in slimmed.written})

        with progress.step("normalize", f"scrub volatile files, clamp times to {the_epoch}") as step:
            scrubbed = scrub(staging, the_epoch)
            normalized = NormalizeResult(
                seconds=scrubbed.seconds,
                epoch=the_epoch,
                removed=scrubbed.removed,
                emptied=scrubbed.emptied,
                shadow_lines=scrubbed.shadow_lines,
                clamped=scrubbed.clamped,
                entries=scrubbed.entries,
            )
            steps.append(step.done(normalized))

        fake_time = {"E2FSPROGS_FAKE_TIME": str(the_epoch)}
        hashed: list[Future[str]] = []
        written = Written()
        sidecar = manifest_sidecar(target, lambda: inputs, hashed, written)
        with staged_output(target, sidecars=sidecar, progress=progress, written=written) as staged:

            def make(size: int, options: MkfsOptions) -> MkfsResult:
                try:
                    return make_filesystem(
                        staged,
                        replace(options, uuid=inputs.uuid, hash_seed=inputs.hash_seed, populate_from=staging),
                        env=fake_time,
                    )
                except CommandError as exc:
                    if "allocate" in exc.stderr or "space" in exc.stderr or "inode" in exc.stderr:
                        host = host_full(staged)
                        if host is not None:
                            raise host from None
                        raise too_small(size, used, staged_tree.content.inodes) from None
                    raise

            if headroom is None:
                with progress.step("allocate", f"{num_bytes} bytes") as step:
                    steps.append(step.done(allocate(staged, num_bytes, overwrite=True)))  # staged_output made it
                with progress.step("mkfs", "mkfs.ext4 -d staging") as step:
                    steps.append(step.done(make(num_bytes, DEFAULT_OPTIONS)))
            else:
                with progress.step("size", "measure the staged tree, choose the size") as step:
                    size_start = time.monotonic()
                    estimate, files = sizing.tree_content(staging)
                    # The agent is written after the size is chosen (agent.py): room is left for it.
                    later = agent_room(spec.agent)
                    first = sizing.choose(estimate + later, files, headroom, slack=sizing.STEP // 2)
                    made: list[tuple[AllocateResult, MkfsResult]] = []

                    def remake(size: int, options: MkfsOptions) -> None:
                        allocated = allocate(staged, size, overwrite=True)  # a remake starts from an empty file
                        made.append((allocated, make(size, options)))

                    # mkfs.ext4 -d is the measure: remade at the size it calls for, never more than a few times.
                    chosen, _ = sizing.fit(staged, headroom, first, remake, later=later)
                    # The last allocate and mkfs are listed as theirs; the size step has the rest.
                    last = sum(result.seconds for result in made[-1])
                    steps.append(step.done(sizing.result(chosen, time.monotonic() - size_start - last)))
                inputs = dataclasses.replace(inputs, size=chosen.size)
                steps.extend(made[-1])
            with progress.step("times", "debugfs: ctime and atime := epoch; e2fsck -fn") as step:
                steps.append(step.done(pin_inode_times(staged, the_epoch, owners=owners)))
            with contextlib.ExitStack() as keeping:
                if storing is not None:
                    # The filesystem as it is before the agent: what the entry keeps.
                    store, key = storing
                    cache_start = time.monotonic()
                    try:
                        pending = keeping.enter_context(store.writing(key))
                        sparse.copy(staged, pending / IMAGE)
                    except (InputError, OSError) as exc:  # a cache that cannot be written costs only speed
                        progress.log_line(f"cache: cannot store an entry in {store.root} ({exc}); building on")
                        storing = None
                    copied = time.monotonic() - cache_start
                placed, records = _agent_and_check(staged, spec.agent, the_epoch, system.kind, progress, hashed)
                steps.append(placed)
                if storing is not None:
                    with progress.step("cache", f"store the filesystem before the agent as {key[:12]}") as step:
                        cache_start = time.monotonic()
                        try:
                            blocks = overlay.FileBlocks.of(pending / IMAGE)
                            meta = _entry_meta(inputs, system.kind, spec, write_records(pending, records), blocks)
                            entry = store.commit(key, pending, meta)
                        except (CorruptEntryError, OSError) as exc:
                            progress.log_line(f"cache: cannot store an entry in {store.root} ({exc}); building on")
                        else:
                            seconds = copied + time.monotonic() - cache_start
                            stored = CacheResult(seconds=seconds, key=key, hit=False, bytes=entry.disk_bytes)
                            steps.append(step.done(stored))
    return result_of(target, start, steps, hashed, written, spec.slim)


def _entry_meta(
    inputs: BuildManifest, kind: InitKind, spec: BuildSpec, records_sha256: str, blocks: overlay.FileBlocks
) -> dict[str, Any]:
    manifest = dataclasses.asdict(inputs)
    return {
        "manifest": {name: manifest[name] for name in TREE_FIELDS},
        "init": kind.value,
        "records_sha256": records_sha256,
        "file_blocks": blocks.to_json(),
        "description": f"{inputs.base_image} ({inputs.base_image_id[:19]}), {inputs.size // 2**20} MiB, "
        f"init {kind.value}, script {'yes' if spec.script else 'no'}, epoch {inputs.source_date_epoch}",
    }


def _agent_and_check(
    staged: Path, agent: Path, the_epoch: int, kind: InitKind, progress: Progress, hashed: list[Future[str]]
) -> tuple[StepResult, Records]:
    """The agent step, then the final image's sha256 (a thread) beside the service check; the
    image's records (the service check's, kept with a cache entry) are returned."""
    with progress.step("agent", "write the agent into the filesystem (debugfs); e2fsck -fn") as step:
        placed = step.done(place_agent(staged, agent, the_epoch))
    hashed.append(sparse.in_background(sparse.sha256, staged))
    records = image_records(staged)
    check_service_with(staged, kind, records)
    return placed, records
