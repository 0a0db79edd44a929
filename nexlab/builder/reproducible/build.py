"""The reproducible build's entry point: its checks, the cache's lookup and the build from an entry
(``clean`` builds from scratch; the package's docstring says why each step is there)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nexlab import e2fsck
from nexlab.builder import engine
from nexlab.builder.init import InitKind, parse_init
from nexlab.builder.inputs import check_agent, regular_file
from nexlab.builder.manifest import BuildManifest, manifest_path
from nexlab.builder.output import Written, staged_output
from nexlab.builder.reproducible import cached, epoch, overlay
from nexlab.builder.reproducible.agent import AgentResult, write_agent
from nexlab.builder.reproducible.facts import check_service_with, read_records
from nexlab.builder.reproducible.inputs import e2fsprogs_version
from nexlab.builder.reproducible.results import CacheResult
from nexlab.builder.results import BuildResult, StepResult
from nexlab.builder.sizing import check_auto
from nexlab.builder.spec import BuildSpec
from nexlab.cache import Cache, CacheEntry, CorruptEntryError
from nexlab.errors import InputError
from nexlab.host import sparse
from nexlab.progress import Progress, or_logging
from nexlab.sizes import parse_size
from nexlab.slim import SlimResult

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
    # Bad inputs fail before the engine is asked (``setup_inputs`` takes them again for the container).
    check_agent(spec.agent, arch)
    for path, what in ((spec.script, "script"), (spec.service, "service")):
        if path is not None:
            regular_file(path, what)
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
        extra = () if headroom is None else (f"agent-room={agent_room(spec.agent)}",)
        key = cached.key_of(spec, base_id, e2fsprogs_version(), extra)
        entry = store.lookup(key)
        if entry is not None:
            try:
                return _from_cache(spec, target, store, entry, progress, start)
            except CorruptEntryError as exc:
                log.warning("cache entry %s is damaged (%s): removed, building from scratch", key[:12], exc)
                progress.log_line(f"cache: entry {key[:12]} damaged ({exc}), removed; building from scratch")
        from nexlab.builder.reproducible import clean  # imported here: a build from the cache does without

        client = client or _connect(spec, before_engine)
        return clean.build(spec, target, num_bytes, headroom, progress, start, client, (store, key))
    from nexlab.builder.reproducible import clean

    return clean.build(spec, target, num_bytes, headroom, progress, start, _connect(spec, before_engine), None)


def _connect(spec: BuildSpec, before_engine: Callable[[], object] | None) -> Any:
    if before_engine is not None:
        before_engine()
    return engine.connect(spec.engine)


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
            **{name: meta["manifest"][name] for name in TREE_FIELDS},
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
    sidecar = manifest_sidecar(target, lambda: inputs, hashed, written)
    with staged_output(target, sidecars=sidecar, progress=progress, written=written) as staged:
        # The entry's CRC-32 in a thread from the start: on a busy machine each thread gets its
        # share of the CPU, on an idle one the check is done long before the sha256.
        checked = sparse.in_background(store.verify, entry)
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
                fake_time = {"E2FSPROGS_FAKE_TIME": str(the_epoch)}
                if fast:
                    done = overlay.written(staged)
                    hashed.append(sparse.in_background(overlay.sha256, entry.image, staged, done))
                    filled = sparse.in_background(_check_then_fill, entry.image, staged, done, fake_time)
                else:
                    hashed.append(sparse.in_background(sparse.sha256, staged))
                    filled = sparse.in_background(_check_then_fill, entry.image, staged, None, fake_time)
                # The records are parsed (Python) while the threads wait on the kernel and hashlib.
                records = _records(store, entry)
                filled.result()  # e2fsck's complaint first, as a clean build gives it
                check_service_with(staged, kind, records)
                seconds = time.monotonic() - agent_start
                steps.append(step.done(AgentResult(seconds=seconds, bytes=spec.agent.stat().st_size, fsck_clean=True)))
        except CorruptEntryError:
            raise
        except Exception:
            checked.result()  # CorruptEntryError when a damaged entry is why a step failed
            raise
        checked.result()  # CorruptEntryError: the staged output is dropped, nothing renamed
        store.touch(entry)
    return result_of(target, start, steps, hashed, written, spec.slim)


def _check_then_fill(entry_image: Path, staged: Path, done: overlay.Ranges | None, env: Mapping[str, str]) -> None:
    """``e2fsck -fn`` of the output before the entry's file content is copied in, then the copy
    (``done``: what ``overlay.written`` found; None when the whole entry was copied already).

    e2fsck reads no regular file's content (only the metadata copy and the agent step's
    writes, which are all there), so its verdict is the whole image's. Before the copy,
    the fsync e2fsck ends with (even under ``-n``) writes out megabytes; after it, the whole
    image: 0.01 s against 0.1 s, measured on the 200 MiB benchmark image.
    """
    e2fsck.ensure_clean(staged, env=env)
    if done is not None:
        overlay.fill(entry_image, staged, done)


def _records(store: Cache, entry: CacheEntry) -> Records:
    try:
        return read_records(entry.directory, entry.meta["records_sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        store.remove(entry.directory)
        raise CorruptEntryError(f"its records are unreadable ({exc})") from None


#: The manifest's fields an entry records (the agent's digest and the base's name are the build's own).
TREE_FIELDS = (
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


def manifest_sidecar(
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


def agent_room(agent: Path) -> int:
    """What the agent takes of the free space once written: its 4 KiB blocks and one more (its
    extent tree's or the placeholder's block: a bound, not an exact count)."""
    return (-(-agent.stat().st_size // 4096) + 1) * 4096


def _done(value: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(value)
    return future


def result_of(
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
