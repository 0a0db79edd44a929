"""`nexlab resize`: grow or shrink an image (a checked copy resized, then renamed over it)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "resize"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "grow or shrink an image to --size N, or to leave --free N for nex"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    resize = sub.add_parser(
        NAME,
        help=HELP,
        description="Resize an ext4 image safely: it is copied beside itself, e2fsck -f checks the copy "
        "(an image with errors is refused), resize2fs resizes it and the copy replaces the image only "
        "when complete. A shrink below what the content needs is refused with that minimum. A symbolic "
        "link is refused: pass the image itself.",
    )
    resize.add_argument("image", type=Path, metavar="IMAGE", help="the ext4 image (not compressed)")
    how = resize.add_mutually_exclusive_group(required=True)
    how.add_argument("--size", metavar="SIZE", help="the new size in bytes or with a unit, e.g. 300MiB")
    how.add_argument(
        "--free",
        metavar="SIZE",
        help="the size that leaves SIZE for nex to write (as nexlab audit counts it; at most 1 MiB more)",
    )
    resize.set_defaults(handler=run_resize)


def run_resize(args: argparse.Namespace) -> int:
    from nexlab import report
    from nexlab.builder.resize import resize

    print(report.text(resize(args.image, args.size, free=args.free)))
    return 0
