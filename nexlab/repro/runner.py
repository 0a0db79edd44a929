"""``repro()``: build N times with variations, compare the images, explain the differences."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from nexlab import tempdirs
from nexlab.builder.spec import BuildSpec
from nexlab.diff.model import Diff
from nexlab.errors import InputError
from nexlab.progress import Progress, ProgressBase, or_logging
from nexlab.repro.model import ReproResult, RunResult
from nexlab.repro.variations import applied, variation

#: The pause between runs, so anything derived from the clock (in seconds) differs.
MIN_GAP_SECONDS = 1.1


def repro(
    spec: BuildSpec,
    *,
    plain: bool = False,
    runs: int = 2,
    name: str = "rootfs",
    keep: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> ReproResult:
    """Build ``runs`` times (reproducible path, or the mount path with ``plain``), each with
    another build directory, umask, TZ and locale and at another time; diff every run
    whose bytes differ from the first. The images are deleted unless ``keep`` names a
    directory to leave them in.
    """
    from nexlab.builder.pipeline import build
    from nexlab.diff import diff

    if runs < 2:
        raise InputError(f"--runs {runs}: comparing needs at least 2 runs")
    if keep is not None and not Path(keep).is_dir():
        raise InputError(f"directory {keep} does not exist")
    start = time.monotonic()
    progress = or_logging(progress)
    if plain:
        spec = replace(spec, source_date_epoch=None)
    # Resolved before any run changes the working directory.
    absolute = spec.absolute()
    results: list[RunResult] = []
    with _workdir(keep) as workdir:
        for index in range(runs):
            if results:
                time.sleep(MIN_GAP_SECONDS)
            v = variation(index, workdir)
            description = f"umask {v.umask:04o}, TZ={v.tz}, {v.locale}, {v.build_path}"
            with progress.step(f"run {index + 1}/{runs}", description) as step:
                started = time.time()
                with applied(v) as directory:
                    built = build(
                        absolute,
                        directory / f"{name}.ext4",
                        reproducible=not plain,
                        progress=_Prefixed(progress, f"run {index + 1}"),
                        # Runs from the cache would compare the cache with itself.
                        cache=False,
                    )
                results.append(RunResult(index, v, built.output, built.sha256, built.seconds, started))
                step.done(built)
        diffs: list[tuple[int, Diff]] = []
        for run in results[1:]:
            if run.sha256 != results[0].sha256:
                with progress.step("diff", f"run 1 against run {run.index + 1}") as step:
                    diffs.append((run.index, step.done(diff(results[0].output, run.output, packages=False))))
    return ReproResult(
        name=name,
        mode="plain" if plain else "reproducible",
        runs=tuple(results),
        diffs=tuple(diffs),
        inputs=spec.describe(),
        seconds=time.monotonic() - start,
    )


@contextlib.contextmanager
def _workdir(keep: str | os.PathLike[str] | None) -> Iterator[Path]:
    if keep is not None:
        yield Path(keep).resolve()
        return
    with tempdirs.directory("repro") as directory:
        yield directory


class _Prefixed(ProgressBase):
    """Forwards a build's progress with the run's name in front of each step."""

    def __init__(self, inner: Progress, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    def step_started(self, step: str, description: str) -> None:
        self.inner.step_started(f"{self.prefix}: {step}", description)

    def step_finished(self, step: str, result: Any) -> None:
        self.inner.step_finished(f"{self.prefix}: {step}", result)

    def step_failed(self, step: str, error: BaseException) -> None:
        self.inner.step_failed(f"{self.prefix}: {step}", error)

    def log_line(self, line: str) -> None:
        self.inner.log_line(line)

    def fraction(self, done: float, text: str = "") -> None:
        self.inner.fraction(done, text)
