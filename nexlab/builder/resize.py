"""``nexlab resize``: grow or shrink an existing image, never touching the original until done.

The image is copied (sparse) to a temporary name beside it, e2fsck'd there with
``-fy`` (a clean image only gets its last-check time set, which resize2fs wants;
one with errors is refused, and the copy dropped), resized with resize2fs, checked
again with ``-fn``, and renamed over the original. Any failure or Ctrl-C on the way
removes the copy: the original is either the old image or the new one, whole.

``--free`` sizes as ``--size auto`` does: the audit of the result shows at least that
much space nex can write (``Budget.nex_free_bytes``) and less than ``sizing.STEP`` more.
Inodes stay as many per block group as the image has (resize2fs cannot change that).
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from nexlab import e2fsck
from nexlab.builder.allocate import MINIMUM_SIZE
from nexlab.builder.manifest import manifest_path
from nexlab.builder.output import COMPRESSED, staged_output
from nexlab.builder.results import StepResult
from nexlab.builder.sizing import STEP, Headroom, read_free
from nexlab.errors import CommandError, InputError, ResizeError, ShrinkBelowContentError
from nexlab.host import sparse
from nexlab.run import run
from nexlab.sizes import format_size, parse_size

_MINIMUM = re.compile(r"Estimated minimum size of the filesystem:\s*(\d+)")
#: resize2fs settles --free in one pass or two (inode tables of added groups): a bound, not a loop.
_ATTEMPTS = 6
#: Seconds one resize2fs may take (a shrink moves blocks: a few GiB take well under a minute).
RESIZE_TIMEOUT = 1800.0


@dataclass(frozen=True)
class ResizeResult(StepResult):
    image: Path
    old_size: int
    new_size: int
    #: The least size resize2fs -P says the content needs.
    minimum_size: int
    #: What nex can write after the resize (the audit's budget).
    nex_free_bytes: int
    #: ``--free``'s request, if that is how the size was chosen.
    requested_free: int | None = None
    #: A ``--reproducible`` build's manifest beside the image: it describes the image before.
    stale_manifest: Path | None = None

    step = "resize"

    def summary(self) -> str:
        return (
            f"{self.image.name}: {format_size(self.old_size)} → {format_size(self.new_size)}, "
            f"{format_size(self.nex_free_bytes)} free for nex"
        )

    def facts(self) -> list[tuple[str, str]]:
        verb = "grown" if self.new_size > self.old_size else "shrunk" if self.new_size < self.old_size else "kept"
        facts = [
            ("image", str(self.image)),
            ("size", f"{format_size(self.old_size)} → {format_size(self.new_size)} ({self.new_size} bytes, {verb})"),
            ("minimum", f"{format_size(self.minimum_size)} (resize2fs -P)"),
            ("free for nex", format_size(self.nex_free_bytes)),
        ]
        if self.requested_free is not None:
            facts.append(("free asked", format_size(self.requested_free)))
        if self.stale_manifest is not None:
            facts.append(("note", f"{self.stale_manifest} describes the image before the resize (its sha256 and size)"))
        facts.append(("time", f"{self.seconds:.2f} s"))
        return facts


def resize(
    image: str | os.PathLike[str],
    size: int | str | None = None,
    *,
    free: int | str | None = None,
) -> ResizeResult:
    """Resize the ext4 ``image`` to ``size`` bytes, or to leave ``free`` bytes for nex.

    Refuses a symbolic link (the file it names is what to pass: the rename would
    replace the link, not resize what it points to), compressed images, an image
    e2fsck finds errors in, and a shrink below what the content needs
    (``ShrinkBelowContentError`` carries that minimum).
    """
    start = time.monotonic()
    path = Path(image)
    if (size is None) == (free is None):
        raise InputError("give the new size or the free space: one of --size and --free")
    target = parse_size(size) if size is not None else None
    wanted = Headroom.of(free).free if free is not None else None
    old_size = _check_image(path)
    with staged_output(path) as copy:
        sparse.copy(path, copy)
        os.chmod(copy, stat.S_IMODE(path.lstat().st_mode))
        try:
            # Bounded: on a corrupt image e2fsck can restart without end.
            fixed = run(["e2fsck", "-fy", str(copy)], check=False, timeout=e2fsck.BUILD_TIMEOUT)
        except CommandError:
            raise ResizeError(
                f"{path}: e2fsck -f did not finish within {e2fsck.BUILD_TIMEOUT:.0f} s; nothing was changed"
            ) from None
        status = e2fsck.exit_status(fixed.returncode)
        if not status.clean:
            raise ResizeError(
                f"{path} is not clean (e2fsck -f: {status.describe()}); nothing was changed",
                hint=f"repair it first with e2fsck -f {path}",
            )
        block_size, minimum = _minimum(copy)
        if target is not None:
            new_size = -(-target // block_size) * block_size
            _refuse_below(path, new_size, minimum)
            _resize_to(copy, new_size)
        else:
            assert wanted is not None
            new_size = _resize_for_free(path, copy, old_size, wanted, block_size, minimum)
        checked = e2fsck.check(copy)
        if not checked.clean:
            raise checked.error()
        after = read_free(copy, new_size)
    manifest = manifest_path(path)
    return ResizeResult(
        seconds=time.monotonic() - start,
        image=path,
        old_size=old_size,
        new_size=new_size,
        minimum_size=minimum,
        nex_free_bytes=after.nex_free_bytes,
        requested_free=wanted,
        stale_manifest=manifest if manifest.is_file() else None,
    )


def _check_image(path: Path) -> int:
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise InputError(
            f"{path} is a symbolic link; nexlab resizes only the image itself",
            hint=f"pass {os.path.realpath(path)} if that is the image meant",
        )
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path} is not a regular file")
    if path.suffix.lower() in COMPRESSED:
        raise InputError(f"{path} is compressed; resize the uncompressed image", hint="decompress it first")
    with path.open("rb") as handle:
        handle.seek(1024 + 56)
        if handle.read(2) != b"\x53\xef":
            raise ResizeError(f"{path} is not an ext2/3/4 image (no superblock magic)")
    return info.st_size


def _minimum(copy: Path) -> tuple[int, int]:
    """(block size, the least bytes resize2fs -P says the content needs)."""
    from nexlab.builder.mkfs import superblock_facts

    block_size = int(superblock_facts(copy)["Block size"])
    output = run(["resize2fs", "-P", str(copy)]).stdout
    match = _MINIMUM.search(output)
    if not match:
        raise ResizeError(f"resize2fs -P did not say the minimum size of {copy.name}")
    return block_size, max(int(match.group(1)) * block_size, MINIMUM_SIZE)


def _refuse_below(path: Path, new_size: int, minimum: int, free: int | None = None) -> None:
    if new_size >= minimum:
        return
    needed = -(-minimum // 2**20)
    raise ShrinkBelowContentError(
        f"cannot shrink {path} to {format_size(new_size)}: its content needs at least {format_size(minimum)} "
        f"({minimum} bytes, resize2fs -P){f' plus the {format_size(free)} free asked' if free else ''}",
        minimum_bytes=minimum,
        hint=f"use --size {needed}MiB or more",
    )


def _resize_to(copy: Path, new_size: int) -> None:
    """resize2fs on the copy: a grown file first, a shrunk one cut after."""
    current = copy.stat().st_size
    if new_size > current:
        os.truncate(copy, new_size)
    try:
        run(["resize2fs", str(copy), f"{new_size // 1024}K"], timeout=RESIZE_TIMEOUT)
    except CommandError as exc:
        last = next((line for line in reversed(exc.stderr.splitlines()) if line.strip()), "")
        raise ResizeError(f"resize2fs failed: {last or exc}; the original is unchanged") from None
    if new_size < current:
        os.truncate(copy, new_size)


def _resize_for_free(path: Path, copy: Path, old_size: int, free: int, block_size: int, minimum: int) -> int:
    """Resize until nex can write ``free`` bytes and less than ``STEP`` more: each pass moves
    the size by what the last one missed (new block groups bring inode tables, so not exact)."""
    size = old_size
    for _ in range(_ATTEMPTS):
        over = read_free(copy, size).nex_free_bytes - free
        if 0 <= over < STEP:
            return size
        # Aim half a step above the request: the next pass's overhead moves by a few blocks.
        size = max(-(-(size - over + STEP // 2) // block_size) * block_size, MINIMUM_SIZE)
        _refuse_below(path, size, minimum, free)
        _resize_to(copy, size)
    if 0 <= read_free(copy, size).nex_free_bytes - free < STEP:
        return size
    raise ResizeError(f"could not settle {path} at {format_size(free)} free in {_ATTEMPTS} passes")
