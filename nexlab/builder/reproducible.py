"""The reproducible build: no mount, no loop device, bit-identical images.

A kernel mount writes random inode generations, nanosecond times and journal
state, and a parallel writer places files differently each run
(``notes/reproducible-ext4.md`` §2). So this path never mounts anything:

1. the same setup script as the mount path runs in a container of the base
   image, with ``SOURCE_DATE_EPOCH`` set (bookworm's shadow tools honour it),
   and its exported filesystem is extracted into a host **staging directory**
   exactly as the mount path extracts it; a user who is not root keeps the
   owners, modes and xattrs aside (``rootless``) for step 4;
2. the staging tree is scrubbed and every mtime clamped (``normalize``);
3. ``mkfs.ext4 -d`` copies it into a fresh sparse file, with ``LC_ALL=C``, the
   pinned config and layout, ``E2FSPROGS_FAKE_TIME``, and a UUID and hash seed
   derived from the inputs;
4. e2fsprogs 1.47.0 copies ctime and atime verbatim from the staging tree, so
   debugfs sets both to the epoch on every inode in use;
5. ``e2fsck -fn`` must find the result clean.

The default epoch is the base image's creation time: it changes exactly when
the base does, is the same on every machine that has that image, and is never
in the future.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import tempfile
import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.builder import engine, owned, safefs, signals
from nexlab.builder.allocate import allocate
from nexlab.builder.container import ContentTooLargeError, SetupInputs, export_stream, setup_container
from nexlab.builder.extract import extract
from nexlab.builder.init import parse_init
from nexlab.builder.manifest import BuildManifest, manifest_path
from nexlab.builder.mkfs import mkfs, superblock_facts
from nexlab.builder.normalize import scrub
from nexlab.builder.output import host_full, sha256_file, staged_output
from nexlab.builder.populate import base_init, setup_inputs, too_small
from nexlab.builder.results import BuildResult, StepResult
from nexlab.builder.rootless import Owner, owner_commands
from nexlab.builder.service_check import check_service
from nexlab.builder.spec import BuildSpec
from nexlab.e2fsck import exit_status
from nexlab.errors import CommandError, InputError
from nexlab.progress import Progress, or_logging
from nexlab.run import run
from nexlab.sizes import format_size, parse_size
from nexlab.times import iso_utc

if TYPE_CHECKING:
    from docker.models.images import Image

#: A fixed namespace for the UUIDs nexlab derives (uuid5 of the inputs' digest).
NAMESPACE = uuidlib.UUID("6d1c2f0e-5b7a-4c2e-9f3d-6e657831ab00")
#: The inodes mke2fs reserves (1, 3–10) hold no file; 2 is the root, 11 lost+found.
_RESERVED = frozenset(range(1, 11)) - {2}


@dataclass(frozen=True)
class StagingResult(StepResult):
    base_image: str
    base_image_id: str
    directory: Path
    entries: int
    bytes: int
    output_tail: tuple[str, ...] = ()

    step = "stage"

    @property
    def log_tail(self) -> tuple[str, ...]:
        return self.output_tail

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("base image", f"{self.base_image} ({self.base_image_id[:19]})"),
            ("staging tree", f"{self.entries} entries, {format_size(self.bytes)}"),
            ("time", f"{self.seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class NormalizeResult(StepResult):
    epoch: int
    removed: tuple[str, ...]
    emptied: tuple[str, ...]
    shadow_lines: int
    clamped: int
    entries: int

    step = "normalize"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("epoch", f"{self.epoch} ({iso_utc(self.epoch)})"),
            ("removed", ", ".join(self.removed) or "-"),
            ("emptied", ", ".join(self.emptied) or "-"),
            ("shadow days pinned", str(self.shadow_lines)),
            ("mtimes clamped", f"{self.clamped} of {self.entries}"),
            ("time", f"{self.seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class TimesResult(StepResult):
    inodes: int
    fsck_clean: bool
    #: Inodes whose owner, mode and xattrs came from the container (builds by a normal user).
    owners: int = 0

    step = "times"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("inodes pinned", f"{self.inodes} (ctime, atime)"),
            ("owners restored", f"{self.owners} inodes (uid, gid, mode, xattrs)" if self.owners else "-"),
            ("e2fsck -fn", "clean" if self.fsck_clean else "ERRORS"),
            ("time", f"{self.seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class Inputs:
    """Everything that decides the image's bytes; its digest seeds the UUID and hash seed."""

    base_image: str
    base_image_id: str
    base_image_digest: str
    agent_sha256: str
    script_sha256: str | None
    service_sha256: str
    setup_sha256: str
    e2fsprogs: str
    epoch: int
    epoch_source: str
    size: int
    network: str
    #: The init the service was installed for: it decides setup.sh's service step.
    init: str = "openrc"

    def digest(self) -> str:
        parts = [
            self.base_image_id,
            self.agent_sha256,
            self.script_sha256 or "-",
            self.service_sha256,
            self.setup_sha256,
            self.e2fsprogs,
            str(self.epoch),
            str(self.size),
            self.network,
            self.init,
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    @property
    def uuid(self) -> str:
        return str(uuidlib.uuid5(NAMESPACE, "uuid:" + self.digest()))

    @property
    def hash_seed(self) -> str:
        return str(uuidlib.uuid5(NAMESPACE, "hash_seed:" + self.digest()))


def build_reproducible(
    spec: BuildSpec, output: str | os.PathLike[str] = "rootfs.ext4", *, progress: Progress | None = None
) -> BuildResult:
    """Build ``output`` so that the same inputs always give the same bytes.

    Needs a Docker engine but no loop device and no mount. Writes
    ``<output>.manifest.json`` with every input next to the image.
    """
    start = time.monotonic()
    report = or_logging(progress)
    target = Path(output)
    image, network, source_date_epoch = spec.base, spec.network, spec.source_date_epoch
    num_bytes = parse_size(spec.size)
    setup_inputs(spec.agent, spec.script, spec.service)  # bad inputs fail before the engine is asked
    parse_init(spec.init)
    if source_date_epoch is not None and source_date_epoch < 0:
        raise InputError(f"source date epoch {source_date_epoch} is negative")
    if not target.parent.is_dir():
        raise InputError(f"output directory {target.parent} does not exist")
    client = engine.connect()
    base = engine.ensure_image(client, image)
    system = base_init(client, base, image, spec.init, network, report)
    setup = setup_inputs(spec.agent, spec.script, spec.service, system.kind)
    inputs = collect_inputs(image, base, setup, num_bytes, network, source_date_epoch)

    steps: list[StepResult] = []
    with staging_directory(num_bytes) as staging:
        report.step_started("stage", f"setup container from {image} into a staging directory")
        stage_start = time.monotonic()
        environment = {"SOURCE_DATE_EPOCH": str(inputs.epoch)}
        with setup_container(
            client, base, setup, report, reference=image, environment=environment, network=network
        ) as finished:
            try:
                # As a normal user the tree is ours, owners and modes noted aside for debugfs.
                staged_tree = extract(export_stream(finished), staging)
            except ContentTooLargeError as exc:
                if os.path.ismount(staging.parent):
                    # A tmpfs capped at the image's size: what does not fit it cannot fit the image.
                    raise too_small(num_bytes, exc.content_bytes, exc.content_files) from None
                raise InputError(
                    f"the staging directory {staging.parent.parent} is full: the content is "
                    f"{exc.content_bytes / 2**20:.1f} MiB in {exc.content_files} files",
                    hint="point NEXLAB_STAGING_DIR at a directory with more room",
                ) from None
        owners = staged_tree.owners
        tail = finished.output_tail
        entries, used = staged_tree.content.entries, staged_tree.content.bytes
        steps.append(
            StagingResult(
                seconds=time.monotonic() - stage_start,
                base_image=image,
                base_image_id=base.id,
                directory=staging,
                entries=entries,
                bytes=used,
                output_tail=tail,
            )
        )
        report.step_finished("stage", steps[-1])

        report.step_started("normalize", f"scrub volatile files, clamp times to {inputs.epoch}")
        scrubbed = scrub(staging, inputs.epoch)
        steps.append(
            NormalizeResult(
                seconds=scrubbed.seconds,
                epoch=inputs.epoch,
                removed=scrubbed.removed,
                emptied=scrubbed.emptied,
                shadow_lines=scrubbed.shadow_lines,
                clamped=scrubbed.clamped,
                entries=scrubbed.entries,
            )
        )
        report.step_finished("normalize", steps[-1])

        fake_time = {"E2FSPROGS_FAKE_TIME": str(inputs.epoch)}
        manifests: list[BuildManifest] = []

        def manifest_of(final: Path) -> dict[Path, bytes]:
            # Written with the image and renamed right after it: never an image without its manifest.
            manifests.append(manifest_for(inputs, network, num_bytes, sha256_file(final)))
            return {manifest_path(target): manifests[0].to_json().encode()}

        with staged_output(target, sidecars=manifest_of) as staged:
            report.step_started("allocate", f"{num_bytes} bytes")
            steps.append(allocate(staged, num_bytes, overwrite=True))  # staged_output made it, empty
            report.step_finished("allocate", steps[-1])
            report.step_started("mkfs", "mkfs.ext4 -d staging")
            try:
                steps.append(
                    mkfs(staged, uuid=inputs.uuid, hash_seed=inputs.hash_seed, populate_from=staging, env=fake_time)
                )
            except CommandError as exc:
                if "allocate" in exc.stderr or "space" in exc.stderr or "inode" in exc.stderr:
                    host = host_full(staged)
                    if host is not None:
                        raise host from None
                    raise too_small(num_bytes, used, staged_tree.content.inodes) from None
                raise
            report.step_finished("mkfs", steps[-1])
            report.step_started("times", "debugfs: ctime and atime := epoch; e2fsck -fn")
            steps.append(pin_inode_times(staged, inputs.epoch, owners=owners))
            report.step_finished("times", steps[-1])
            check_service(staged, system.kind)
    digest = manifests[0].image_sha256
    manifest = manifest_path(target)
    return BuildResult(
        seconds=time.monotonic() - start,
        output=target,
        size=target.stat().st_size,
        sha256=digest,
        steps=tuple(steps),
        reproducible=True,
        manifest=manifest,
    )


def manifest_for(inputs: Inputs, network: str, size: int, image_sha256: str) -> BuildManifest:
    return BuildManifest(
        base_image=inputs.base_image,
        base_image_id=inputs.base_image_id,
        base_image_digest=inputs.base_image_digest,
        agent_sha256=inputs.agent_sha256,
        script_sha256=inputs.script_sha256,
        service_sha256=inputs.service_sha256,
        setup_sha256=inputs.setup_sha256,
        e2fsprogs=inputs.e2fsprogs,
        source_date_epoch=inputs.epoch,
        epoch_source=inputs.epoch_source,
        size=size,
        network=network,
        uuid=inputs.uuid,
        hash_seed=inputs.hash_seed,
        image_sha256=image_sha256,
    )


def collect_inputs(
    image: str, base: Image, setup: SetupInputs, size: int, network: str, source_date_epoch: int | None
) -> Inputs:
    if source_date_epoch is None:
        epoch, source = default_epoch(base), "base image creation time"
    else:
        epoch, source = source_date_epoch, "given"
    digests = base.attrs.get("RepoDigests") or []
    return Inputs(
        base_image=image,
        base_image_id=base.id,
        base_image_digest=digests[0] if digests else base.id,
        agent_sha256=sha256_file(setup.agent),
        script_sha256=sha256_file(setup.script) if setup.script else None,
        service_sha256=sha256_file(setup.service),
        setup_sha256=sha256_file(Path(str(resources.files("nexlab.builder.assets") / "setup.sh"))),
        e2fsprogs=e2fsprogs_version(),
        epoch=epoch,
        epoch_source=source,
        size=size,
        network=network,
        init=setup.init.value,
    )


_CREATED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")


def default_epoch(base: Image) -> int:
    """The base image's creation time (whole seconds), never later than now."""
    created = str(base.attrs.get("Created") or "")
    match = _CREATED.match(created)
    if not match:
        raise InputError(f"base image {base.id[:19]} has no creation time", hint="pass --source-date-epoch")
    when = dt.datetime.fromisoformat(match.group(1)).replace(tzinfo=dt.UTC)
    return max(0, min(int(when.timestamp()), int(time.time())))


_VERSION = re.compile(r"mke2fs (\S+)")


def e2fsprogs_version() -> str:
    """``1.47.0``: part of the inputs, because each release lays out the same tree differently."""
    result = run(["mke2fs", "-V"])
    match = _VERSION.search(result.stderr + result.stdout)
    return match.group(1) if match else "unknown"


#: Where the staging tree goes when it fits: RAM. On the build hosts measured, the
#: setup container's copy of a 190 MB Debian tree took 7.5 s into a directory on the
#: disk (and 5.9 s to delete) but 1.8 s into /dev/shm (0.15 s to delete).
SHARED_MEMORY = Path("/dev/shm")


def _memory_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def staging_parent(content_limit: int) -> tuple[Path | None, bool]:
    """Where the staging directory goes, and whether it gets its own tmpfs capped at
    ``content_limit`` bytes.

    ``$NEXLAB_STAGING_DIR`` if set; else, for root with twice the limit in free memory,
    a private tmpfs of exactly the limit (an image with a 1 GiB file then costs at
    most the requested size of RAM before the build says it does not fit); else the
    system's temporary directory, on disk. A normal user cannot cap a tmpfs, and
    /dev/shm would hold whatever the base image has, so they stage on disk.
    """
    configured = os.environ.get("NEXLAB_STAGING_DIR")
    if configured:
        return Path(configured), False
    if os.geteuid() == 0 and _memory_available() >= 2 * content_limit:
        return None, True
    return None, False


@contextlib.contextmanager
def staging_directory(content_limit: int) -> Iterator[Path]:
    """A fresh directory for the tree, inside a private (0700) one.

    The tree's own mode becomes the image root's, so it is pinned to 0755 whatever
    the umask; the private parent keeps other users out meanwhile. Its name carries
    our PID and it is recorded, so a later run removes it if we are killed. The
    clean-up (an iterative walk that never follows a link) cannot be interrupted.
    """
    parent, capped = staging_parent(content_limit)
    if parent is not None and not parent.is_dir():
        raise InputError(f"staging directory {parent} does not exist")
    private = Path(tempfile.mkdtemp(prefix=f"nexlab-staging-{owned.tag()}-", dir=parent))
    mounted = False
    with owned.recorded("staging", private):
        try:
            if capped:
                options = f"size={content_limit},mode=0700,nosuid,nodev"
                mounted = (
                    run(["mount", "-t", "tmpfs", "-o", options, "nexlab-staging", str(private)], check=False).returncode
                    == 0
                )
            tree = private / "root"
            tree.mkdir()
            os.chmod(tree, 0o755)
            yield tree
        finally:
            with signals.deferred():
                # Lazily if need be: a tmpfs still busy is freed when the last user goes.
                if mounted and run(["umount", str(private)], check=False).returncode != 0:
                    run(["umount", "-l", str(private)], check=False)
                with contextlib.suppress(OSError):
                    safefs.rmtree(private)


_GROUP = re.compile(r"^Group (\d+):")


def in_use_inodes(image: Path) -> list[int]:
    """Inode numbers marked in use in the bitmaps, without the reserved ones."""
    per_group = int(superblock_facts(image)["Inodes per group"])
    output = run(["dumpe2fs", str(image)]).stdout
    used: list[int] = []
    group = -1
    for line in output.splitlines():
        heading = _GROUP.match(line)
        if heading:
            group = int(heading.group(1))
            continue
        stripped = line.strip()
        if group < 0 or not stripped.startswith("Free inodes:"):
            continue
        first, last = group * per_group + 1, (group + 1) * per_group
        free: set[int] = set()
        for part in stripped.removeprefix("Free inodes:").split(","):
            part = part.strip()
            if not part:
                continue
            low, _, high = part.partition("-")
            free.update(range(int(low), int(high or low) + 1))
        used.extend(n for n in range(first, last + 1) if n not in free and n not in _RESERVED)
    return used


def pin_inode_times(image: Path, epoch: int, *, owners: dict[str, Owner] | None = None) -> TimesResult:
    """ctime and atime of every inode in use := ``epoch``; then ``e2fsck -fn`` must be clean.

    ``owners`` (the build of a user who is not root) also sets owners, modes and
    xattrs, in the same debugfs session.
    """
    start = time.monotonic()
    inodes = in_use_inodes(image)
    fake_time = {"E2FSPROGS_FAKE_TIME": str(epoch)}
    owned = 0
    with tempfile.TemporaryDirectory(prefix="nexlab-debugfs-") as scratch:
        lines: list[str] = []
        if owners is not None:
            lines, owned = owner_commands(image, owners, Path(scratch))
        lines += [f"sif <{n}> ctime @{epoch}\nsif <{n}> atime @{epoch}" for n in inodes]
        commands = Path(scratch) / "cmds"
        commands.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = run(["debugfs", "-w", "-f", str(commands), str(image)], env=fake_time)
    # debugfs exits 0 even when a command fails; its complaints are the stderr lines
    # other than the version banner.
    problems = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("debugfs ")]
    if problems:
        raise CommandError(["debugfs", "-w", "-f", "cmds", str(image)], 1, "\n".join(problems))
    # The superblock counts every byte ever written to the filesystem, so a build that
    # took more writes (a normal user's, with owners to restore) would differ there.
    # A last, tiny session resets it; what remains is that session's own, fixed writes.
    run(["debugfs", "-w", "-R", "ssv kbytes_written 0", str(image)], env=fake_time)
    fsck = run(["e2fsck", "-fn", str(image)], check=False, env=fake_time)
    if not exit_status(fsck.returncode).clean:
        raise CommandError(["e2fsck", "-fn", str(image)], fsck.returncode, fsck.stdout + fsck.stderr)
    return TimesResult(seconds=time.monotonic() - start, inodes=len(inodes), fsck_clean=True, owners=owned)
