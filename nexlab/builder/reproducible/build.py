"""The reproducible build's steps, in order (the package's docstring says why each is there)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nexlab import e2fsck
from nexlab.builder import engine, sizing
from nexlab.builder.allocate import allocate
from nexlab.builder.container import ContentTooLargeError, export_stream, setup_container
from nexlab.builder.extract import extract
from nexlab.builder.init import InitKind, parse_init
from nexlab.builder.manifest import BuildManifest, manifest_path
from nexlab.builder.mkfs import MkfsOptions, make_filesystem
from nexlab.builder.normalize import scrub
from nexlab.builder.output import Written, host_full, staged_output
from nexlab.builder.populate import base_init, setup_inputs, too_small
from nexlab.builder.reproducible import cached, epoch, overlay
from nexlab.builder.reproducible.agent import AgentResult, place_agent, placeholder, write_agent
from nexlab.builder.reproducible.facts import check_service_with, image_records, read_records, write_records
from nexlab.builder.reproducible.inputs import collect_inputs, e2fsprogs_version
from nexlab.builder.reproducible.results import CacheResult, NormalizeResult, StagingResult
from nexlab.builder.reproducible.staging import staging_directory
from nexlab.builder.reproducible.times import pin_inode_times
from nexlab.builder.results import AllocateResult, BuildResult, MkfsResult, StepResult
from nexlab.builder.rootless import Owner
from nexlab.builder.sizing import DEFAULT_OPTIONS, Headroom, check_auto
from nexlab.builder.spec import BuildSpec
from nexlab.cache import Cache, CacheEntry, CorruptEntryError
from nexlab.cache.store import IMAGE
from nexlab.errors import CommandError, InputError
from nexlab.host import sparse
from nexlab.progress import Progress, or_logging
from nexlab.sizes import parse_size
from nexlab.slim import SlimResult
from nexlab.slim import slim as slim_tree

if TYPE_CHECKING:
    from nexlab.audit.inventory import FileRecord

log = logging.getLogger("nexlab.cache")

Records = Mapping[str, "FileRecord"]
T = TypeVar("T")
Steps = list[StepResult | SlimResult]

#: The staging tmpfs's cap with ``--size auto`` (there is no image size to cap it at yet).
AUTO_STAGING_LIMIT = 4 * 2**30


def build_reproducible(
    spec: BuildSpec,
    output: str | os.PathLike[str] = "rootfs.ext4",
    *,
    progress: Progress | None = None,
    cache: Cache | bool | None = True,
    before_engine: Callable[[], object] | None = None,
) -> BuildResult:
    """Build ``output`` so that the same inputs always give the same bytes.

    Needs a Docker engine (``spec.engine``; none at all for a cache hit on a base
    given by image ID) but no loop device and no mount. Writes
    ``<output>.manifest.json`` with every input next to the image. ``cache``: True
    uses the build cache (``nexlab.cache``; off with ``NEXLAB_BUILD_CACHE=off``), False
    bypasses it, or a ``Cache``. A build from the cache gives the same bytes as one
    without. ``before_engine`` is called once, before the build first connects to the
    engine (the CLI reaps the engines there: a cache hit never connects).
    """
    start = time.monotonic()
    progress = or_logging(progress)
    target = Path(output)
    headroom = check_auto(spec.size, spec.free, spec.workload)
    # With --size auto the tmpfs cap is no image size: the content decides the size.
    num_bytes = AUTO_STAGING_LIMIT if headroom is not None else parse_size(spec.size)
    arch = spec.target_arch()
    setup_inputs(spec.agent, spec.script, spec.service, arch=arch)  # bad inputs fail before the engine is asked
    parse_init(spec.init)
    epoch.check_given(spec.source_date_epoch)
    if not target.parent.is_dir():
        raise InputError(f"output directory {target.parent} does not exist")
    store = cached.choose(cache)
    client = None
    if store is not None:
        if cached.IMAGE_ID.match(spec.base):
            base_id = spec.base
        else:
            client = _connect(spec, before_engine)
            base_id = engine.ensure_image(client, spec.base, arch=arch).id
        # With --size auto the size is chosen before the agent is written, with room for it:
        # the filesystem kept then depends on the agent's size (in blocks), not its content.
        extra = () if headroom is None else (f"agent-room={_agent_room(spec.agent)}",)
        key = cached.key_of(spec, base_id, e2fsprogs_version(), extra)
        entry = store.lookup(key)
        if entry is not None:
            try:
                return _from_cache(spec, target, store, entry, progress, start)
            except CorruptEntryError as exc:
                log.warning("cache entry %s is damaged (%s): removed, building from scratch", key[:12], exc)
                progress.log_line(f"cache: entry {key[:12]} damaged ({exc}), removed; building from scratch")
        client = client or _connect(spec, before_engine)
        return _clean(spec, target, num_bytes, headroom, progress, start, client, (store, key))
    return _clean(spec, target, num_bytes, headroom, progress, start, _connect(spec, before_engine), None)


def _connect(spec: BuildSpec, before_engine: Callable[[], object] | None) -> Any:
    if before_engine is not None:
        before_engine()
    return engine.connect(spec.engine)


def _clean(
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
        sidecar = _manifest_sidecar(target, lambda: inputs, hashed, written)
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
                    later = _agent_room(spec.agent)
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
    return _result(target, start, steps, hashed, written, spec.slim)


def _from_cache(
    spec: BuildSpec, target: Path, store: Cache, entry: CacheEntry, progress: Progress, start: float
) -> BuildResult:
    """The build from ``entry``: its image, then the agent step; ``CorruptEntryError`` (nothing
    written) when the entry fails its check.

    The entry's metadata goes in first and the agent step runs on it; the image's sha256
    then runs beside the copy of the files' content (``overlay``), and ``e2fsck -fn`` and
    the service check run on the whole image, as in a clean build."""
    meta = entry.meta
    try:
        inputs = BuildManifest(
            base_image=spec.base,
            agent_sha256=sparse.sha256(spec.agent),
            **{name: meta["manifest"][name] for name in _TREE_FIELDS},
        )
        kind = InitKind(meta["init"])
        blocks = overlay.FileBlocks.from_json(meta["file_blocks"])
    except (KeyError, TypeError, ValueError) as exc:  # an entry of an older shape, say
        store.remove(entry.directory)
        raise CorruptEntryError(f"its record lacks what a build needs ({exc})") from None
    the_epoch = inputs.source_date_epoch
    steps: Steps = []
    hashed: list[Future[str]] = []
    written = Written()
    sidecar = _manifest_sidecar(target, lambda: inputs, hashed, written)
    with staged_output(target, sidecars=sidecar, progress=progress, written=written) as staged:
        checked: Future[None] | None = None
        try:
            with progress.step("cache", f"the filesystem before the agent, from cache entry {entry.key[:12]}") as step:
                cache_start = time.monotonic()
                fast = overlay.copy_metadata(entry.image, staged, blocks)
                if not fast:  # this file system's holes cannot tell the agent step's writes apart
                    sparse.copy(entry.image, staged)
                seconds = time.monotonic() - cache_start
                steps.append(step.done(CacheResult(seconds=seconds, key=entry.key, hit=True, bytes=entry.disk_bytes)))
            with progress.step("agent", "write the agent into the filesystem (debugfs); e2fsck -fn") as step:
                agent_start = time.monotonic()
                write_agent(staged, spec.agent, the_epoch)
                if fast:
                    done = overlay.written(staged)
                    hashed.append(sparse.in_background(overlay.sha256, entry.image, staged, done))
                    filled = sparse.in_background(overlay.fill, entry.image, staged, done)
                else:
                    hashed.append(sparse.in_background(sparse.sha256, staged))
                    filled = _done(None)
                # The records are parsed (Python) while both threads wait on the kernel and hashlib.
                records = _records(store, entry)
                filled.result()
                # The entry's CRC-32 (zlib, another thread) beside e2fsck (another process) and the
                # service check (this thread), each reading the image the others read.
                checked = sparse.in_background(store.verify, entry)
                e2fsck.ensure_clean(staged, env={"E2FSPROGS_FAKE_TIME": str(the_epoch)})
                seconds = time.monotonic() - agent_start
                steps.append(step.done(AgentResult(seconds=seconds, bytes=spec.agent.stat().st_size, fsck_clean=True)))
            check_service_with(staged, kind, records)
        except CorruptEntryError:
            raise
        except Exception:
            if checked is None:
                checked = sparse.in_background(store.verify, entry)
            checked.result()  # CorruptEntryError when a damaged entry is why a step failed
            raise
        checked.result()  # CorruptEntryError: the staged output is dropped, nothing renamed
        store.touch(entry)
    return _result(target, start, steps, hashed, written, spec.slim)


def _records(store: Cache, entry: CacheEntry) -> Records:
    try:
        return read_records(entry.directory, entry.meta["records_sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        store.remove(entry.directory)
        raise CorruptEntryError(f"its records are unreadable ({exc})") from None


#: The manifest's fields an entry records (the agent's digest and the base's name are the build's own).
_TREE_FIELDS = (
    "base_image_id",
    "base_image_digest",
    "script_sha256",
    "service_sha256",
    "setup_sha256",
    "e2fsprogs",
    "source_date_epoch",
    "epoch_source",
    "size",
    "network",
    "init",
    "free",
    "slim",
)


def _entry_meta(
    inputs: BuildManifest, kind: InitKind, spec: BuildSpec, records_sha256: str, blocks: overlay.FileBlocks
) -> dict[str, Any]:
    manifest = dataclasses.asdict(inputs)
    return {
        "manifest": {name: manifest[name] for name in _TREE_FIELDS},
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


def _manifest_sidecar(
    target: Path, inputs: Callable[[], BuildManifest], hashed: list[Future[str]], written: Written
) -> Callable[[Path], dict[Path, bytes]]:
    """The manifest beside the image; ``inputs`` is read when the image is final (``--size auto``
    records the size it chose)."""

    def manifest_of(final: Path) -> dict[Path, bytes]:
        # Written with the image and renamed right after it: never an image without its manifest.
        compressed = written.compressed
        if compressed is None:
            manifest = inputs().with_image(hashed[0].result())
        else:  # both digests were taken while compressing
            manifest = inputs().with_image(compressed.image_sha256, compressed.sha256)
            hashed.insert(0, _done(compressed.sha256))
        return {manifest_path(target): manifest.to_json().encode()}

    return manifest_of


def _agent_room(agent: Path) -> int:
    """What the agent takes of the free space once written: its 4 KiB blocks and one more (its
    extent tree's or the placeholder's block: a bound, not an exact count)."""
    return (-(-agent.stat().st_size // 4096) + 1) * 4096


def _done(value: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(value)
    return future


def _result(
    target: Path, start: float, steps: Steps, hashed: list[Future[str]], written: Written, slim: tuple[str, ...]
) -> BuildResult:
    compressed = written.compressed
    if compressed is not None:
        steps.append(compressed)
    return BuildResult(
        seconds=time.monotonic() - start,
        output=target,
        size=target.stat().st_size,
        sha256=compressed.sha256 if compressed is not None else hashed[0].result(),
        steps=tuple(steps),
        reproducible=True,
        manifest=manifest_path(target),
        slim=slim,
        image_sha256=compressed.image_sha256 if compressed is not None else "",
        compressed_sha256=compressed.sha256 if compressed is not None else None,
    )
