"""`nexlab build`: the five steps, nex rootfs's flags; or the reproducible no-mount path."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.cli.terminal import TerminalProgress
from nexlab.cli.types import Subparsers

if TYPE_CHECKING:
    from nexlab.builder.spec import BuildSpec


def register(sub: Subparsers) -> None:
    build = sub.add_parser(
        "build",
        help="build rootfs.ext4 (nex rootfs, done right)",
        description="Build a Firecracker root filesystem: allocate, mkfs.ext4, mount, populate from a "
        "container of the base image, unmount. Needs root and a Docker engine. With --reproducible: "
        "no mount and no loop device (works without root or mount privileges; still needs Docker), "
        "bit-identical output for the same inputs.",
    )
    add_build_options(build)
    build.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("rootfs.ext4"),
        help="output image; a name ending in .gz is gzipped, .zst zstd-compressed (default: rootfs.ext4)",
    )
    build.add_argument(
        "--reproducible",
        action="store_true",
        help="bit-identical output for the same inputs: no mount and no loop device, so it works "
        "without mount privileges, also as a normal user (same bytes as root gets); mkfs.ext4 -d from "
        "a scrubbed staging tree; still needs Docker. Writes OUTPUT.manifest.json with the inputs",
    )
    build.add_argument(
        "--verify-boot",
        action="store_true",
        help="then boot the image in QEMU (nexlab boot) and fail unless the agent starts; "
        "the console log is kept as OUTPUT.boot.log",
    )
    build.add_argument("--boot-timeout", type=float, default=180, metavar="SECONDS", help="for --verify-boot")
    build.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    build.set_defaults(handler=run_build)


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """The inputs of a build, shared by ``build`` and ``repro``."""
    from nexlab.builder.allocate import DEFAULT_SIZE
    from nexlab.builder.init import INIT_CHOICES
    from nexlab.builder.populate import DEFAULT_IMAGE

    parser.add_argument(
        "--agent", required=True, type=Path, help="the agent binary (installed as /usr/local/bin/agent)"
    )
    parser.add_argument("--image", default=DEFAULT_IMAGE, help=f"base image (default: {DEFAULT_IMAGE})")
    parser.add_argument("--script", type=Path, help="extra setup script run in the container before the copy")
    parser.add_argument(
        "--service",
        type=Path,
        help="the agent's service for the base's init: an OpenRC script, a systemd unit or an inittab "
        "wrapper (default: nexlab's, supervised, as nex)",
    )
    parser.add_argument(
        "--init",
        choices=INIT_CHOICES,
        default="auto",
        help="the base's init (default: auto, detected from the base image)",
    )
    parser.add_argument(
        "--size",
        default=str(DEFAULT_SIZE),
        help=f"filesystem size in bytes or with a unit, e.g. 200MiB (default: {DEFAULT_SIZE})",
    )
    parser.add_argument(
        "--network",
        default="none",
        help="Docker network of the setup container: none (default) or bridge when --script downloads",
    )
    parser.add_argument(
        "--source-date-epoch",
        type=epoch,
        metavar="N",
        help="with --reproducible: clamp every time to N seconds since 1970 (default: $SOURCE_DATE_EPOCH, "
        "else the base image's creation time)",
    )


def build_spec(args: argparse.Namespace, epoch: int | None) -> BuildSpec:
    """The ``BuildSpec`` of the options ``add_build_options`` added."""
    from nexlab.builder.spec import BuildSpec

    return BuildSpec.of(args.agent, args.image, args.script, args.service, args.size, args.network, epoch, args.init)


def run_build(args: argparse.Namespace) -> int:
    from nexlab.builder.output import committed
    from nexlab.builder.pipeline import build
    from nexlab.cli.cmd_clean import reap_and_report

    reap_and_report("build")
    progress = TerminalProgress(quiet=args.quiet)
    spec = build_spec(args, source_date_epoch(args) if args.reproducible else None)
    try:
        result = build(spec, args.output, reproducible=args.reproducible, progress=progress)
    except KeyboardInterrupt:
        if not committed(args.output):
            raise
        # The signal came after the complete image (and its manifest) replaced the output.
        print(f"nexlab build: interrupted after {args.output} was written; it is complete", file=sys.stderr)
        return 0
    print(result)
    if args.verify_boot:
        print(verify_boot(result.output, args.boot_timeout, progress))
    return 0


def verify_boot(image: Path, timeout: float, progress: TerminalProgress) -> object:
    """Boot the built image (a ``.gz`` or ``.zst`` output boots from a temporary plain copy).

    A failed boot raises ``BootError`` (exit 1); the image stays in place so it can be
    inspected, and the console log beside it says what happened.
    """
    from nexlab.boot import verify_boot as boot_and_check

    log = image.with_name(image.name + ".boot.log")
    with progress.step("verify-boot", f"QEMU, waiting up to {timeout:.0f} s for the agent") as step:
        return step.done(boot_and_check(image, timeout=timeout, log=log, progress=progress))


def source_date_epoch(args: argparse.Namespace) -> int | None:
    """``--source-date-epoch``, else ``$SOURCE_DATE_EPOCH`` (the reproducible-builds convention)."""
    from nexlab.errors import InputError

    if args.source_date_epoch is not None:
        return int(args.source_date_epoch)
    text = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not text:
        return None
    try:
        return epoch(text)
    except argparse.ArgumentTypeError as exc:
        raise InputError(f"SOURCE_DATE_EPOCH: {exc}") from None


def epoch(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is before 1970")
    return value
