"""Many builds at once: a matrix (agents × bases × arches × engines) over a pool of Docker engines.

``build_many`` runs each ``Job`` on its engine (a job without one goes to whichever
engine of ``engines`` has a free slot), at most ``per_engine`` at a time on each, and
collects every outcome: one build's failure is its row in the result, never the
end of the others. ``load_matrix`` reads a ``build-many`` TOML file into jobs.
"""

from __future__ import annotations

import dataclasses
import queue
import re
import signal
import threading
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexlab.builder import engine as engines_
from nexlab.builder.inputs import ARCHES
from nexlab.builder.spec import BuildSpec
from nexlab.display import Displayable, Summarized
from nexlab.errors import InputError, NexlabError
from nexlab.progress import Progress, ProgressBase, or_logging

#: The axes of a matrix and the BuildSpec field each one sets.
AXES = {"agents": "agent", "bases": "base", "arches": "arch", "engines": "engine"}
#: ``engines`` entries that mean the default engine (DOCKER_HOST, else the local socket).
DEFAULT_ENGINE = ("default", "local", "")


@dataclass(frozen=True)
class Job:
    name: str
    spec: BuildSpec
    output: Path


@dataclass(frozen=True)
class JobResult(Summarized):
    name: str
    engine: str
    output: Path
    seconds: float
    sha256: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        outcome = f"sha256 {self.sha256[:16]}…" if self.sha256 else f"FAILED: {self.error}"
        return f"{self.name} on {self.engine} in {self.seconds:.1f} s: {outcome}"


@dataclass(frozen=True)
class ManyResult(Displayable):
    results: tuple[JobResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> tuple[JobResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    def summary(self) -> str:
        return f"{len(self.results)} builds, {len(self.failed)} failed, {self.seconds:.1f} s"

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(name, engine, sha256, seconds, result) per build, in the jobs' order."""
        return [
            (r.name, r.engine, r.sha256 or "-", f"{r.seconds:.1f}", "ok" if r.ok else f"FAILED: {r.error}")
            for r in self.results
        ]

    def table(self) -> str:
        header = ("name", "engine", "sha256", "seconds", "result")
        rows = [header, *self.rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])), row[4]]) for row in rows]
        failed = len(self.failed)
        lines.append(f"{len(self.results)} builds, {failed} failed, {self.seconds:.1f} s")
        return "\n".join(lines)

    def facts(self) -> list[tuple[str, str]]:
        return [(r.name, f"{r.engine}: {r.sha256 or r.error}") for r in self.results]


class _Prefixed(ProgressBase):
    """One build's progress as lines with its name in front; a lock keeps builds' lines whole."""

    def __init__(self, inner: Progress, name: str, lock: threading.Lock) -> None:
        self.inner, self.name, self.lock = inner, name, lock

    def step_started(self, step: str, description: str) -> None:
        with self.lock:
            self.inner.step_started(f"{self.name}: {step}", description)

    def step_finished(self, step: str, result: Any) -> None:
        with self.lock:
            self.inner.step_finished(f"{self.name}: {step}", result)

    def step_failed(self, step: str, error: BaseException) -> None:
        with self.lock:
            self.inner.step_failed(f"{self.name}: {step}", error)

    def log_line(self, line: str) -> None:
        with self.lock:
            self.inner.log_line(f"[{self.name}] {line}")

    def fraction(self, done: float, text: str = "") -> None:
        pass  # one bar for many builds would say nothing


def _label(engine: str | None) -> str:
    return engines_.resolve(engine).label if engine else engines_.Engine("").label


def build_many(
    jobs: Sequence[Job | BuildSpec],
    *,
    engines: Sequence[str | None] = (None,),
    per_engine: int = 2,
    reproducible: bool = True,
    cache: bool = True,
    output_dir: str | Path = ".",
    progress: Progress | None = None,
) -> ManyResult:
    """Build every job, at most ``per_engine`` at a time on each engine; never raises for a build.

    A ``BuildSpec`` given instead of a ``Job`` is named after its agent and base and
    written to ``output_dir``. A job whose spec names an engine runs there (that
    engine gets its own ``per_engine`` slots); the others share ``engines``.
    """
    from nexlab.builder.pipeline import build

    if per_engine < 1:
        raise InputError(f"per_engine must be at least 1, got {per_engine}")
    pool = list(dict.fromkeys(None if e in DEFAULT_ENGINE else e for e in engines)) or [None]
    named = [j if isinstance(j, Job) else _job_of(j, Path(output_dir)) for j in jobs]
    _check_names(named)
    progress = or_logging(progress)
    lock = threading.Lock()
    shared: queue.SimpleQueue[int] = queue.SimpleQueue()
    pinned: dict[str | None, queue.SimpleQueue[int]] = {e: queue.SimpleQueue() for e in pool}
    for index, job in enumerate(named):
        if job.spec.engine:
            pinned.setdefault(job.spec.engine, queue.SimpleQueue()).put(index)
        else:
            shared.put(index)
    results: list[JobResult | None] = [None] * len(named)
    start = time.monotonic()

    def run(index: int, on: str | None) -> None:
        job = named[index]
        spec = job.spec if job.spec.engine or on is None else dataclasses.replace(job.spec, engine=on)
        began = time.monotonic()
        prefixed = _Prefixed(progress, job.name, lock)
        try:
            built = build(spec, job.output, reproducible=reproducible, progress=prefixed, cache=cache)
            outcome = JobResult(job.name, _label(spec.engine), job.output, time.monotonic() - began, built.sha256)
        except NexlabError as exc:
            outcome = JobResult(job.name, _label(spec.engine), job.output, time.monotonic() - began, error=str(exc))
        except Exception as exc:  # a bug in one build is still only that build's row
            error = f"{type(exc).__name__}: {exc}"
            outcome = JobResult(job.name, _label(spec.engine), job.output, time.monotonic() - began, error=error)
        results[index] = outcome
        prefixed.log_line(f"{'done' if outcome.ok else 'FAILED'} in {outcome.seconds:.1f} s")

    def worker(on: str | None, serves_shared: bool) -> None:
        # Ctrl-C goes to the main thread (waiting below), never to a build's thread.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        own = pinned[on]
        while True:
            try:
                index = own.get_nowait()
            except queue.Empty:
                if not serves_shared:
                    return
                try:
                    index = shared.get_nowait()
                except queue.Empty:
                    return
            run(index, on)

    threads = [
        threading.Thread(target=worker, args=(on, on in pool), name=f"nexlab-build-{slot}", daemon=True)
        for on in pinned
        for slot in range(per_engine)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = tuple(r for r in results if r is not None)
    return ManyResult(results=done, seconds=time.monotonic() - start)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _job_of(spec: BuildSpec, output_dir: Path) -> Job:
    name = f"{_slug(spec.agent.stem)}-{_slug(spec.base.rsplit('/', 1)[-1])}"
    return Job(name, spec, output_dir / f"{name}.ext4")


def _check_names(jobs: Sequence[Job]) -> None:
    seen: dict[Path, str] = {}
    for job in jobs:
        output = job.output.absolute()
        if output in seen:
            raise InputError(
                f"builds {seen[output]} and {job.name} would both write {job.output}",
                hint="put {agent}, {base}, {arch} and {engine} in the output name",
            )
        seen[output] = job.name


@dataclass(frozen=True)
class Matrix:
    """A ``build-many`` file: the jobs, and how to run them."""

    jobs: tuple[Job, ...]
    per_engine: int = 2
    reproducible: bool = True
    engines: tuple[str | None, ...] = field(default=(None,))


def load_matrix(path: str | Path, *, output_dir: str | Path | None = None) -> Matrix:
    """Read a build-many TOML file (README, "nexlab build-many"): ``agents``, ``bases``,
    ``arches`` and ``engines`` are the axes; any other ``BuildSpec`` field is common
    to every build; ``output`` names each image (``{agent}``, ``{base}``, ``{arch}``,
    ``{engine}``, ``{name}``); relative paths are relative to the file."""
    source = Path(path)
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source} is not valid TOML: {exc}") from None
    return matrix_of(data, base_dir=source.parent, output_dir=output_dir)


_SETTINGS = {"output", "per_engine", "reproducible"}


def matrix_of(data: Mapping[str, Any], *, base_dir: Path, output_dir: str | Path | None = None) -> Matrix:
    """``load_matrix`` for a parsed TOML table."""
    from nexlab.builder import spec as specs

    fields = {name for name, _ in specs.inputs()} - {"agent", "base", "engine"}
    unknown = set(data) - set(AXES) - _SETTINGS - fields
    if unknown:
        known = ", ".join(sorted({*AXES, *_SETTINGS, *fields}))
        raise InputError(f"build-many: unknown key {', '.join(sorted(unknown))} (known: {known})")
    axes: dict[str, list[Any]] = {}
    for axis in AXES:
        values = data.get(axis, [] if axis == "agents" else [None])
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not values:
            raise InputError(f"build-many: {axis} must be a non-empty list")
        axes[axis] = values
    if axes["agents"] == []:
        raise InputError("build-many: agents is missing (a list of agent paths)")
    host = engines_.host_architecture()
    for arch in axes["arches"]:
        if arch not in (None, *ARCHES):
            raise InputError(f"build-many: unknown arch {arch!r}", hint=f"use some of {', '.join(ARCHES)}")
    common = {name: data[name] for name in fields if name in data}
    for name in ("script", "service"):
        if common.get(name) is not None:
            common[name] = base_dir / str(common[name])
    template = str(data.get("output", "{name}.ext4"))
    directory = Path(output_dir) if output_dir is not None else base_dir
    varying = [axis for axis in AXES if len(axes[axis]) > 1]
    jobs: list[Job] = []
    for agent in axes["agents"]:
        for base in axes["bases"]:
            for arch in axes["arches"]:
                for on in axes["engines"]:
                    engine = None if on in DEFAULT_ENGINE else on
                    base_ref = base if base is not None else specs.default("base")
                    values = {
                        "agent": _slug(Path(str(agent)).stem),
                        "base": _slug(str(base_ref).rsplit("/", 1)[-1]),
                        "arch": arch or host,
                        "engine": _slug(_engine_name(on)),
                    }
                    # The agent and the base always; the arch and the engine when they vary.
                    parts = [values["agent"], values["base"]]
                    parts += [values[AXES[a]] for a in ("arches", "engines") if a in varying]
                    name = "-".join(parts)
                    try:
                        output = directory / template.format(name=name, **values)
                    except (KeyError, IndexError, ValueError) as exc:
                        raise InputError(f"build-many: output {template!r}: unknown field {exc}") from None
                    spec = BuildSpec.of(base_dir / str(agent), base=str(base_ref), engine=engine, arch=arch, **common)
                    jobs.append(Job(name, spec, output))
    _check_names(jobs)
    per_engine = data.get("per_engine", 2)
    if not isinstance(per_engine, int) or per_engine < 1:
        raise InputError(f"build-many: per_engine must be a whole number >= 1, got {per_engine!r}")
    engines = tuple(dict.fromkeys(None if e in DEFAULT_ENGINE else e for e in axes["engines"]))
    reproducible = bool(data.get("reproducible", True))
    return Matrix(tuple(jobs), per_engine=per_engine, reproducible=reproducible, engines=engines)


def _engine_name(on: Any) -> str:
    if on in DEFAULT_ENGINE or on is None:
        return "local"
    text = str(on)
    return text.split("://", 1)[-1]
