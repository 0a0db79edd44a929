"""``slim_image(IMAGE, OUT)``: slim an image built before, on a copy (``nexlab slim``).

The copy is checked (``e2fsck -fn``: the kernel is not asked to mount a damaged
filesystem), mounted, slimmed (``nexlab.slim.slim``), unmounted and checked again,
then renamed to ``OUT``; the input is never written. A ``.gz``/``.zst`` input is
decompressed first, and an ``OUT`` ending in one is compressed. Through a mount the
result is not bit-reproducible: for that, build with ``--reproducible --slim``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nexlab import e2fsck
from nexlab.builder.mount import mount, require_root
from nexlab.builder.output import sha256_file, staged_output
from nexlab.builder.results import StepResult
from nexlab.builder.unmount import unmount
from nexlab.errors import InputError
from nexlab.host import sparse
from nexlab.progress import Progress, or_logging
from nexlab.sizes import format_size
from nexlab.slim import DEFAULT, SlimResult, slim
from nexlab.slim.categories import categories


@dataclass(frozen=True)
class SlimImageResult(StepResult):
    image: Path
    output: Path
    size: int
    sha256: str
    slim: SlimResult

    step = "slim image"

    def summary(self) -> str:
        return f"{self.output.name}: {format_size(self.slim.bytes)} saved, {format_size(self.size)}"

    def facts(self) -> list[tuple[str, str]]:
        parts = [f"{s.category} {format_size(s.saved)} ({s.files} files)" for s in self.slim.savings]
        return [
            ("image", str(self.image)),
            ("output", str(self.output)),
            ("slimmed", ", ".join(parts)),
            ("saved", f"{format_size(self.slim.bytes)} in {self.slim.files} files"),
            ("sha256", self.sha256),
            ("time", f"{self.seconds:.2f} s"),
        ]


def slim_image(
    image: str | os.PathLike[str],
    output: str | os.PathLike[str],
    names: str | Iterable[str] = DEFAULT,
    *,
    progress: Progress | None = None,
) -> SlimImageResult:
    """Write a slimmed copy of ``image`` to ``output`` (may be ``image`` itself: replaced at the end)."""
    from nexlab.image.compressed import plain_image

    start = time.monotonic()
    progress = or_logging(progress)
    source, target = Path(image), Path(output)
    categories(names)  # an unknown category fails before anything is copied
    if not source.is_file():
        raise InputError(f"{source}: no such image")
    require_root("slimming an image through a mount")
    with plain_image(source, progress=progress) as readable:
        with progress.step("check", "e2fsck -fn the input") as step:
            checked = step.done(e2fsck.check(readable))
        if not checked.clean:
            said = checked.status.describe() if checked.status is not None else "e2fsck did not finish"
            raise InputError(
                f"{source}: e2fsck -fn found it damaged ({said}); it is not mounted",
                hint="rebuild it, or run e2fsck -fy on a copy first",
            )
        with staged_output(target) as staged:
            with progress.step("copy", f"{readable.name} to a sparse temporary beside {target.name}") as step:
                sparse.copy(readable, staged)
            with contextlib.ExitStack() as held:
                with progress.step("mount", "loop device") as step:
                    mounted = step.done(held.enter_context(mount(staged)))
                with progress.step("slim", ", ".join(categories_names(names))) as step:
                    slimmed = step.done(slim(mounted.path, names))
                with progress.step("unmount", "umount + e2fsck -fn") as step:
                    unmounted = step.done(unmount(mounted))
            if not unmounted.fsck_clean:
                raise e2fsck.Check(str(target), e2fsck.exit_status(4), unmounted.fsck_report).error()
    return SlimImageResult(
        seconds=time.monotonic() - start,
        image=source,
        output=target,
        size=target.stat().st_size,
        sha256=sha256_file(target),
        slim=slimmed,
    )


def categories_names(names: str | Iterable[str]) -> tuple[str, ...]:
    return tuple(c.name for c in categories(names))
