"""`nexlab build`: the five steps, nex rootfs's flags."""

from __future__ import annotations

import argparse
from pathlib import Path

from nexlab.cli.terminal import TerminalProgress
from nexlab.cli.types import Subparsers


def register(sub: Subparsers) -> None:
    from nexlab.build.allocate import DEFAULT_SIZE
    from nexlab.build.populate import DEFAULT_IMAGE

    build = sub.add_parser(
        "build",
        help="build rootfs.ext4 (nex rootfs, done right)",
        description="Build a Firecracker root filesystem: allocate, mkfs.ext4, mount, populate from a "
        "container of the base image, unmount. Needs root and a Docker engine.",
    )
    build.add_argument("--agent", required=True, type=Path, help="the agent binary (installed as /usr/local/bin/agent)")
    build.add_argument("--image", default=DEFAULT_IMAGE, help=f"base image (default: {DEFAULT_IMAGE})")
    build.add_argument("--script", type=Path, help="extra setup script run in the container before the copy")
    build.add_argument(
        "--service", type=Path, help="OpenRC service for the agent (default: nexlab's, supervised, as nex)"
    )
    build.add_argument(
        "--size",
        default=str(DEFAULT_SIZE),
        help=f"filesystem size in bytes or with a unit, e.g. 200MiB (default: {DEFAULT_SIZE})",
    )
    build.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("rootfs.ext4"),
        help="output image; a name ending in .gz is gzipped (default: rootfs.ext4)",
    )
    build.add_argument(
        "--network",
        default="none",
        help="Docker network of the setup container: none (default) or bridge when --script downloads",
    )
    build.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    from nexlab.build.pipeline import build_rootfs

    progress = TerminalProgress(quiet=args.quiet)
    result = build_rootfs(
        args.output,
        agent=args.agent,
        image=args.image,
        script=args.script,
        service=args.service,
        size=args.size,
        network=args.network,
        progress=progress,
    )
    print(result)
    return 0
