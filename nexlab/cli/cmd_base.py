"""`nexlab base debian|alpine`: offline base images."""

from __future__ import annotations

import argparse
from pathlib import Path

from nexlab.cli.terminal import TerminalProgress

NAME = "base"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "make an offline base image (debootstrap or an Alpine minirootfs)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    base = sub.add_parser(NAME, help=HELP)
    kinds = base.add_subparsers(dest="kind", required=True, metavar="KIND")
    debian = kinds.add_parser("debian", help="Debian minbase + OpenRC (or systemd) + nex user, via debootstrap")
    debian.add_argument(
        "--tag", help="default: nexlab/debian:SUITE, with -systemd, -sysvinit, -caches for the variants"
    )
    debian.add_argument("--suite", default="bookworm", help="bookworm (default), trixie, ...")
    debian.add_argument(
        "--init",
        choices=("openrc", "systemd", "sysvinit"),
        default="openrc",
        help="OpenRC on sysvinit (default), systemd, or sysvinit with its own rc scripts",
    )
    debian.add_argument(
        "--keep-caches", action="store_true", help="leave apt's downloaded packages and indexes in the image"
    )
    debian.add_argument("--mirror", default="http://deb.debian.org/debian", metavar="URL",
                        help="the Debian mirror debootstrap fetches from (default: %(default)s)")  # fmt: skip
    debian.add_argument(
        "--arch",
        choices=("amd64", "arm64"),
        default="amd64",
        help="the CPU of the base (arm64 runs under qemu-user-static)",
    )
    debian.add_argument("--force", action="store_true", help="rebuild even if the tag or the cache exists")
    debian.set_defaults(handler=run_base_debian)
    alpine = kinds.add_parser("alpine", help="import an Alpine minirootfs tarball (busybox init, no OpenRC)")
    source = alpine.add_mutually_exclusive_group(required=True)
    source.add_argument("--rootfs", type=Path, help="alpine-minirootfs-*.tar.gz")
    source.add_argument(
        "--version",
        help="a pinned release (3.19, 3.20): taken from --search folders, then the cache, then downloaded",
    )
    alpine.add_argument("--search", type=Path, action="append", default=[], help="a folder to look in first")
    alpine.add_argument("--tag", help="default: nexlab/alpine:VERSION")
    alpine.set_defaults(handler=run_base_alpine)


def run_base_debian(args: argparse.Namespace) -> int:
    from nexlab.builder import base

    spec = base.DebianSpec.variant(
        args.suite, args.init, keep_caches=args.keep_caches, mirror=args.mirror, arch=args.arch
    )
    print(base.debian(args.tag or spec.default_tag(), spec, force=args.force, progress=TerminalProgress()))
    return 0


def run_base_alpine(args: argparse.Namespace) -> int:
    from nexlab.builder import base

    rootfs = args.rootfs or base.alpine_tarball(args.version, tuple(args.search))
    print(base.alpine(rootfs, args.tag, progress=TerminalProgress()))
    return 0
