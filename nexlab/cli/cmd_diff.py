"""`nexlab diff A B`: what changed between two images, and why."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nexlab.cli.terminal import StepsOnly, TerminalProgress

NAME = "diff"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "compare two rootfs images: bytes, filesystem, content per path, packages"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    diff = sub.add_parser(
        NAME,
        help=HELP,
        description="Compare two ext4 images without mounting them: are the bytes identical, which "
        "superblock fields differ, which paths were added, removed or modified (type, mode, uid, gid, "
        "size, sha256, target, xattrs, mtime), package versions and sizes, and a known cause with its "
        "fix for each difference. Exit status: 0 when the content is identical (even if the bytes "
        "differ), 1 when it differs, 2 on error.",
    )
    diff.add_argument("a", type=Path, help="the old image")
    diff.add_argument("b", type=Path, help="the new image")
    diff.add_argument("--json", action="store_true", help="print JSON (sorted keys) instead of the summary")
    diff.add_argument("--json-file", type=Path, metavar="FILE", help="also write the JSON report to FILE")
    diff.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML report")
    diff.add_argument("--markdown", type=Path, metavar="FILE", help="also write a Markdown report")
    diff.add_argument(
        "--deep",
        action="store_true",
        help="also run diffoscope (Debian package diffoscope) on the files whose content differs",
    )
    diff.add_argument("--depth", type=int, default=2, help="directory depth of the size table (default: 2)")
    diff.add_argument("--no-packages", action="store_true", help="skip the apk/dpkg package comparison")
    diff.add_argument("-q", "--quiet", action="store_true", help="print nothing; only the exit status")
    diff.set_defaults(handler=run_diff)


def run_diff(args: argparse.Namespace) -> int:
    from nexlab.diff import diff
    from nexlab.errors import InputError

    if args.depth < 1:
        raise InputError(f"--depth {args.depth} is not a positive number")
    for output in (args.html, args.markdown, args.json_file):
        if output is not None and not output.parent.is_dir():
            raise InputError(f"directory {output.parent} does not exist")
    progress = StepsOnly(TerminalProgress(quiet=args.quiet), frozenset({"decompress"}))
    result = diff(args.a, args.b, deep=args.deep, depth=args.depth, packages=not args.no_packages, progress=progress)
    from nexlab import report

    report.write(result, {"html": args.html, "markdown": args.markdown, "json": args.json_file})
    if args.json:
        sys.stdout.write(report.json_text(result))
    elif not args.quiet:
        print(report.text(result))
    return 0 if result.identical_content else 1
