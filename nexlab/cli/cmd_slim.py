"""`nexlab slim IMAGE -o OUT`: slim an image built before, on a copy."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "slim"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "remove docs, man pages, locales, caches from an existing image (a copy)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from nexlab.builder.spec import SLIM_CATEGORIES, SLIM_DEFAULT
    from nexlab.cli.cmd_build import argparse_type
    from nexlab.slim.categories import parse_categories

    slim = sub.add_parser(
        NAME,
        help=HELP,
        description="Write a slimmed copy of IMAGE: checked with e2fsck -fn, mounted (needs root), the "
        "categories removed as nexlab build --slim does (records in /etc/nexlab/slim.json and, for dpkg, "
        "/etc/dpkg/dpkg.cfg.d/nexlab-slim), unmounted, checked again and renamed to OUTPUT. IMAGE is "
        "never written. Through a mount the result is not bit-reproducible: for that, build with "
        "--reproducible --slim.",
    )
    slim.add_argument("image", type=Path, metavar="IMAGE", help="the rootfs.ext4 (.gz, .zst too)")
    slim.add_argument(
        "-o", "--output", type=Path, required=True, help="the slimmed image (may be IMAGE: replaced at the end)"
    )
    slim.add_argument(
        "--categories",
        type=argparse_type(parse_categories),
        default=SLIM_DEFAULT,
        metavar="CATEGORIES",
        help=f"comma-separated, of {', '.join(SLIM_CATEGORIES)} or all (default: {','.join(SLIM_DEFAULT)})",
    )
    slim.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    slim.set_defaults(handler=run_slim)


def run_slim(args: argparse.Namespace) -> int:
    from nexlab import report
    from nexlab.builder.slimming import slim_image
    from nexlab.cli.cmd_clean import reap_and_report
    from nexlab.cli.terminal import TerminalProgress

    reap_and_report("slim")
    progress = TerminalProgress(quiet=args.quiet)
    result = slim_image(args.image, args.output, args.categories, progress=progress)
    print(report.text(result))
    return 0
