"""`nexlab repro`: is the build reproducible, and if not, why?"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from nexlab.cli.terminal import TerminalProgress

NAME = "repro"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "build several times with varied surroundings and check the images are bit-identical"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from nexlab.cli.cmd_build import add_build_options

    repro = sub.add_parser(
        NAME,
        help=HELP,
        description="Build N times (default 2) in the spirit of reprotest: each run with another build "
        "directory, umask, TZ and locale, at least a second apart. Then compare the images and explain "
        "every difference with its cause. Uses the reproducible path (no mount) unless --plain. "
        "Exit status: 0 when all runs are bit-identical, 1 otherwise, 2 on error.",
    )
    add_build_options(repro)
    repro.add_argument("--runs", type=int, default=2, help="number of builds (default: 2)")
    repro.add_argument(
        "--plain", action="store_true", help="check the plain (mount) build instead, to see why it is not reproducible"
    )
    repro.add_argument("--report", type=Path, metavar="DIR", help="write DIR/repro-NAME.html, .json and .md")
    repro.add_argument("--json-file", type=Path, metavar="FILE", help="also write the JSON report to FILE")
    repro.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML report")
    repro.add_argument("--markdown", type=Path, metavar="FILE", help="also write a Markdown report")
    repro.add_argument("--name", help="the report's name (default: the base image and the mode)")
    repro.add_argument("--keep", type=Path, metavar="DIR", help="leave the runs' images in DIR")
    repro.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    repro.set_defaults(handler=run_repro)


#: What ``--report DIR`` writes: DIR/repro-NAME plus these.
REPORT_SUFFIXES = {"html": ".html", "json": ".json", "markdown": ".md"}


def default_name(base: str, plain: bool) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-") or "rootfs"
    return f"{slug}-{'plain' if plain else 'reproducible'}"


def run_repro(args: argparse.Namespace) -> int:
    from nexlab.cli.cmd_build import build_spec, source_date_epoch
    from nexlab.cli.cmd_clean import reap_and_report
    from nexlab.errors import InputError
    from nexlab.repro import repro

    reap_and_report("repro")

    name = args.name or default_name(args.base, args.plain)
    if "/" in name or name in (".", ".."):
        raise InputError(f"--name {name!r} must be a plain file name")
    for output in (args.html, args.markdown, args.json_file):
        if output is not None and not output.parent.is_dir():
            raise InputError(f"directory {output.parent} does not exist")
    if args.report is not None:
        # Made up front, as `-o` users expect of an output, so a bad path fails before the builds.
        try:
            args.report.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot make the report directory {args.report}: {exc.strerror}") from exc
    result = repro(
        build_spec(args, source_date_epoch(args) if not args.plain else None),
        plain=args.plain,
        runs=args.runs,
        name=name,
        keep=args.keep,
        progress=TerminalProgress(quiet=args.quiet, show_log=False),
    )
    from nexlab import report

    report.write(result, {"html": args.html, "markdown": args.markdown, "json": args.json_file})
    if args.report is not None:
        # Not with_suffix: a name such as alpine-3.20 has a dot that is no suffix.
        stem = f"repro-{name}"
        report.write(result, {fmt: args.report / f"{stem}{suffix}" for fmt, suffix in REPORT_SUFFIXES.items()})
    print(report.text(result))
    return 0 if result.identical else 1
