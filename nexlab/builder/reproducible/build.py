"""The reproducible build's steps, in order (the package's docstring says why each is there)."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import replace
from pathlib import Path

from nexlab.builder import engine, sizing
from nexlab.builder.allocate import allocate
from nexlab.builder.container import ContentTooLargeError, export_stream, setup_container
from nexlab.builder.extract import extract
from nexlab.builder.init import parse_init
from nexlab.builder.manifest import BuildManifest, manifest_path
from nexlab.builder.mkfs import MkfsOptions, make_filesystem
from nexlab.builder.normalize import scrub
from nexlab.builder.output import Written, host_full, sha256_file, staged_output
from nexlab.builder.populate import base_init, setup_inputs, too_small
from nexlab.builder.reproducible import epoch
from nexlab.builder.reproducible.inputs import collect_inputs
from nexlab.builder.reproducible.results import NormalizeResult, StagingResult
from nexlab.builder.reproducible.staging import staging_directory
from nexlab.builder.reproducible.times import pin_inode_times
from nexlab.builder.results import AllocateResult, BuildResult, MkfsResult, StepResult
from nexlab.builder.rootless import Owner
from nexlab.builder.service_check import check_service
from nexlab.builder.sizing import DEFAULT_OPTIONS, check_auto
from nexlab.builder.spec import BuildSpec
from nexlab.errors import CommandError, InputError
from nexlab.progress import Progress, or_logging
from nexlab.sizes import parse_size
from nexlab.slim import SlimResult
from nexlab.slim import slim as slim_tree

#: The staging tmpfs's cap with ``--size auto`` (there is no image size to cap it at yet).
AUTO_STAGING_LIMIT = 4 * 2**30


def build_reproducible(
    spec: BuildSpec, output: str | os.PathLike[str] = "rootfs.ext4", *, progress: Progress | None = None
) -> BuildResult:
    """Build ``output`` so that the same inputs always give the same bytes.

    Needs a Docker engine but no loop device and no mount. Writes
    ``<output>.manifest.json`` with every input next to the image.
    """
    start = time.monotonic()
    progress = or_logging(progress)
    target = Path(output)
    image, network = spec.base, spec.network
    headroom = check_auto(spec.size, spec.free, spec.workload)
    # With --size auto the tmpfs cap is no image size: the content decides the size.
    num_bytes = AUTO_STAGING_LIMIT if headroom is not None else parse_size(spec.size)
    setup_inputs(spec.agent, spec.script, spec.service)  # bad inputs fail before the engine is asked
    parse_init(spec.init)
    epoch.check_given(spec.source_date_epoch)
    if not target.parent.is_dir():
        raise InputError(f"output directory {target.parent} does not exist")
    client = engine.connect()
    base = engine.ensure_image(client, image)
    system = base_init(client, base, image, spec.init, network, progress)
    setup = setup_inputs(spec.agent, spec.script, spec.service, system.kind)
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

    steps: list[StepResult | SlimResult] = []
    with staging_directory(num_bytes) as staging:
        with progress.step("stage", f"setup container from {image} into a staging directory") as step:
            stage_start = time.monotonic()
            environment = {"SOURCE_DATE_EPOCH": str(the_epoch)}
            with setup_container(
                client, base, setup, progress, reference=image, environment=environment, network=network
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
        manifests: list[BuildManifest] = []

        written = Written()

        def manifest_of(final: Path) -> dict[Path, bytes]:
            # Written with the image and renamed right after it: never an image without its manifest.
            made = written.compressed
            if made is None:
                manifests.append(inputs.with_image(sha256_file(final)))
            else:  # both digests were taken while compressing
                manifests.append(inputs.with_image(made.image_sha256, made.sha256))
            return {manifest_path(target): manifests[0].to_json().encode()}

        with staged_output(target, sidecars=manifest_of, progress=progress, written=written) as staged:

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
                    steps.append(step.done(allocate(staged, num_bytes, overwrite=True)))
                with progress.step("mkfs", "mkfs.ext4 -d staging") as step:
                    steps.append(step.done(make(num_bytes, DEFAULT_OPTIONS)))
            else:
                with progress.step("size", "measure the staged tree, choose the size") as step:
                    size_start = time.monotonic()
                    estimate, files = sizing.tree_content(staging)
                    first = sizing.choose(estimate, files, headroom, slack=sizing.STEP // 2)
                    made: list[tuple[AllocateResult, MkfsResult]] = []

                    def remake(size: int, options: MkfsOptions) -> None:
                        allocated = allocate(staged, size, overwrite=True)  # a remake starts from an empty file
                        made.append((allocated, make(size, options)))

                    # mkfs.ext4 -d is the measure: remade at the size it calls for, never more than a few times.
                    chosen, _ = sizing.fit(staged, headroom, first, remake)
                    # The last allocate and mkfs are listed as theirs; the size step has the rest.
                    last = sum(result.seconds for result in made[-1])
                    steps.append(step.done(sizing.result(chosen, time.monotonic() - size_start - last)))
                inputs = dataclasses.replace(inputs, size=chosen.size)
                steps.extend(made[-1])
            with progress.step("times", "debugfs: ctime and atime := epoch; e2fsck -fn") as step:
                steps.append(step.done(pin_inode_times(staged, the_epoch, owners=owners)))
            check_service(staged, system.kind)
    recorded = manifests[0]
    if written.compressed is not None:
        steps.append(written.compressed)
    manifest = manifest_path(target)
    return BuildResult(
        seconds=time.monotonic() - start,
        output=target,
        size=target.stat().st_size,
        sha256=recorded.compressed_sha256 or recorded.image_sha256,
        steps=tuple(steps),
        reproducible=True,
        manifest=manifest,
        slim=spec.slim,
        image_sha256=recorded.image_sha256,
        compressed_sha256=recorded.compressed_sha256,
    )
