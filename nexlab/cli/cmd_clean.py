"""`nexlab clean`: remove what killed nexlab runs left behind (also done at the start of every run)."""

from __future__ import annotations

import argparse
import sys

NAME = "clean"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "remove containers, volumes, mounts, loop devices and temporaries of killed nexlab runs"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    clean = sub.add_parser(
        NAME,
        help=HELP,
        description="Remove what nexlab runs that were killed (SIGKILL, a crash) left behind: labelled "
        "containers and volumes, mounts under nexlab's mount root, loop devices backed by a nexlab "
        "temporary, staging directories and partial outputs, each only when the process that made it "
        "is gone. build, repro and boot do this first on their own.",
    )
    clean.set_defaults(handler=run_clean)


def reap_and_report(
    command: str, engines: tuple[str | None, ...] = (None,), *, docker: bool = True, host: bool = True
) -> int:
    """Run the reaper (also on ``engines``); one line on stderr per thing removed. Returns how many.

    ``docker``/``host``: as ``nexlab.builder.reaper.reap``'s (the engines, this host's things)."""
    from nexlab.builder.reaper import reap

    removed = reap(engines=(None, *engines), docker=docker, host=host)
    for line in removed:
        print(f"nexlab {command}: removed {line} (left by a killed run)", file=sys.stderr)
    return len(removed)


def run_clean(args: argparse.Namespace) -> int:
    if reap_and_report("clean") == 0:
        print("nothing to clean")
    return 0
