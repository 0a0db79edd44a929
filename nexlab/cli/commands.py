"""The subcommands: each a ``register`` that adds its parser and a ``run`` that calls the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nexlab.cli.terminal import TerminalProgress

Subparsers = Any  # argparse's _SubParsersAction is private


def register_build(sub: Subparsers) -> None:
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
    build.add_argument("--service", type=Path, help="OpenRC service for the agent (default: nexlab's, supervised, as nex)")
    build.add_argument("--size", default=str(DEFAULT_SIZE),
                       help=f"filesystem size in bytes or with a unit, e.g. 200MiB (default: {DEFAULT_SIZE})")
    build.add_argument("-o", "--output", type=Path, default=Path("rootfs.ext4"),
                       help="output image; a name ending in .gz is gzipped (default: rootfs.ext4)")
    build.add_argument("--network", default="none",
                       help="Docker network of the setup container: none (default) or bridge when --script downloads")
    build.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    from nexlab.build.pipeline import build_rootfs

    progress = TerminalProgress(quiet=args.quiet)
    result = build_rootfs(
        args.output, agent=args.agent, image=args.image, script=args.script, service=args.service,
        size=args.size, network=args.network, progress=progress,
    )
    print(result)
    return 0


def register_base(sub: Subparsers) -> None:
    base = sub.add_parser("base", help="make an offline base image (debootstrap or an Alpine minirootfs)")
    kinds = base.add_subparsers(dest="kind", required=True, metavar="KIND")
    debian = kinds.add_parser("debian", help="Debian minbase + OpenRC + nex user, via debootstrap")
    debian.add_argument("--tag", default="nexlab/debian:bookworm")
    debian.add_argument("--suite", default="bookworm")
    debian.add_argument("--mirror", default="http://deb.debian.org/debian")
    debian.add_argument("--force", action="store_true", help="rebuild even if the tag or the cache exists")
    debian.set_defaults(handler=run_base_debian)
    alpine = kinds.add_parser("alpine", help="import an Alpine minirootfs tarball (no OpenRC offline)")
    alpine.add_argument("--rootfs", required=True, type=Path, help="alpine-minirootfs-*.tar.gz")
    alpine.add_argument("--tag", help="default: nexlab/alpine:VERSION")
    alpine.set_defaults(handler=run_base_alpine)


def run_base_debian(args: argparse.Namespace) -> int:
    from nexlab.build import base

    spec = base.DebianSpec(suite=args.suite, mirror=args.mirror)
    print(base.debian(args.tag, spec, force=args.force, progress=TerminalProgress()))
    return 0


def run_base_alpine(args: argparse.Namespace) -> int:
    from nexlab.build import base

    print(base.alpine(args.rootfs, args.tag, progress=TerminalProgress()))
    return 0


def _stdout(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


REGISTRY: list[Callable[[Subparsers], None]] = [register_build, register_base]
