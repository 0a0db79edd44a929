"""`nexlab build-many spec.toml`: a matrix of builds over a pool of Docker engines, and their table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nexlab.progress import ProgressBase

NAME = "build-many"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "build a matrix (agents x bases x arches x engines) from a TOML file, a table of results"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    many = sub.add_parser(
        NAME,
        help=HELP,
        description="Build every combination of the TOML file's agents, bases, arches and engines "
        "(README: nexlab build-many), at most --per-engine at a time on each engine. A failed build is a "
        "row of the table and does not stop the others; the exit status is 1 if any failed.",
    )
    many.add_argument("matrix", type=Path, metavar="SPEC.toml", help="the build matrix")
    many.add_argument(
        "--per-engine", type=int, metavar="N", help="builds in flight per engine (default: the file's, else 2)"
    )
    many.add_argument(
        "-o", "--output-dir", type=Path, metavar="DIR", help="where the images go (default: beside SPEC.toml)"
    )
    many.add_argument("--no-cache", dest="cache", action="store_false", help="bypass the build cache")
    many.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    many.set_defaults(handler=run_build_many)


class _Lines(ProgressBase):
    """Every build's steps and output as plain lines on stderr (bars from parallel builds would mix)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def step_started(self, step: str, description: str) -> None:
        self._print(f"{step}: {description}" if description else step)

    def step_finished(self, step: str, result: Any) -> None:
        seconds = getattr(result, "seconds", None)
        self._print(f"{step}: done" + (f" in {seconds:.2f} s" if isinstance(seconds, float) else ""))

    def step_failed(self, step: str, error: BaseException) -> None:
        self._print(f"{step}: failed: {error}")

    def log_line(self, line: str) -> None:
        self._print(line)


def run_build_many(args: argparse.Namespace) -> int:
    from nexlab.builder.many import build_many, load_matrix
    from nexlab.cli.cmd_clean import reap_and_report
    from nexlab.errors import InputError

    matrix = load_matrix(args.matrix, output_dir=args.output_dir)
    per_engine = args.per_engine if args.per_engine is not None else matrix.per_engine
    if per_engine < 1:
        raise InputError(f"--per-engine must be at least 1, got {per_engine}")
    for job in matrix.jobs:
        if not job.output.parent.is_dir():
            raise InputError(f"output directory {job.output.parent} of {job.name} does not exist")
    reap_and_report(NAME, matrix.engines)
    result = build_many(
        matrix.jobs,
        engines=matrix.engines,
        per_engine=per_engine,
        reproducible=matrix.reproducible,
        cache=args.cache,
        progress=_Lines(args.quiet),
    )
    print(result.table())
    return 0 if result.ok else 1
