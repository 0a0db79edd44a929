"""`nexlab build`: the five steps, nex rootfs's flags; or the reproducible no-mount path."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from nexlab.cli.terminal import TerminalProgress

if TYPE_CHECKING:
    from nexlab.builder.spec import BuildSpec

T = TypeVar("T")


NAME = "build"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "build rootfs.ext4 (nex rootfs, done right)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = sub.add_parser(
        NAME,
        help=HELP,
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
        "--no-cache",
        dest="cache",
        action="store_false",
        help="with --reproducible: neither use nor fill the build cache (nexlab cache ls); the bytes "
        "are the same either way",
    )
    build.add_argument(
        "--verify-boot",
        action="store_true",
        help="then boot the image in QEMU (nexlab boot) and fail unless the agent starts; "
        "the console log is kept as OUTPUT.boot.log",
    )
    build.add_argument(
        "--sbom",
        action="append",
        type=_sbom_format,
        metavar="FORMAT",
        help="then write an SBOM of the image beside it: spdx (OUTPUT.spdx.json, SPDX 2.3) or cyclonedx "
        "(OUTPUT.cdx.json, CycloneDX 1.6); give it twice for both (see nexlab audit --sbom)",
    )
    build.add_argument("--boot-timeout", type=float, default=180, metavar="SECONDS", help="for --verify-boot")
    build.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    build.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON object on stdout (README: JSON contracts; with --verify-boot "
        "its boot check under the key boot); progress stays on stderr",
    )
    build.set_defaults(handler=run_build)


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """The inputs of a build, shared by ``build`` and ``repro``: one option per ``BuildSpec`` field."""
    from dataclasses import MISSING

    from nexlab.builder import spec

    for name, given in spec.inputs():
        default = spec.default(name)
        options: dict[str, object] = {"help": given.help}
        if default is MISSING:
            options["required"] = True
        elif default is not None:
            # argparse hands a string default to type=, as if typed: sizes stay text, as given.
            options["default"] = str(default) if isinstance(default, int) else default
        if given.parse is not None:
            options["type"] = argparse_type(given.parse)
        if given.const is not None:
            options["nargs"] = "?"
            options["const"] = given.const
        if given.choices is not None:
            options["choices"] = given.choices
        if given.metavar is not None:
            options["metavar"] = given.metavar
        elif given.choices is None:
            # Named after the flag, not the field: --image shows IMAGE though the field is ``base``.
            options["metavar"] = given.flag.lstrip("-").replace("-", "_").upper()
        parser.add_argument(given.flag, dest=name, **options)  # type: ignore[arg-type]


def argparse_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` for argparse: its ValueError message becomes the one-line usage error."""
    if parse is Path:
        return parse  # a path is never refused here: the build checks it and says why

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def build_spec(args: argparse.Namespace, epoch: int | None) -> BuildSpec:
    """The ``BuildSpec`` of the options ``add_build_options`` added."""
    from nexlab.builder.spec import BuildSpec

    return BuildSpec.from_values({**vars(args), "source_date_epoch": epoch})


def run_build(args: argparse.Namespace) -> int:
    from nexlab import report
    from nexlab.builder.output import committed
    from nexlab.cli.cmd_clean import reap_and_report

    progress = TerminalProgress(quiet=args.quiet)
    try:
        if args.reproducible:
            from nexlab.builder.reproducible import build_reproducible

            # The engines are reaped only when the build connects to one: a cache hit needs none.
            reap_and_report("build", docker=False)
            spec = build_spec(args, source_date_epoch(args))
            result = build_reproducible(
                spec,
                args.output,
                progress=progress,
                cache=args.cache,
                before_engine=lambda: reap_and_report("build", (args.engine,), host=False),
            )
        else:
            from nexlab.builder.pipeline import build

            reap_and_report("build", (args.engine,))
            spec = build_spec(args, None)
            result = build(spec, args.output, progress=progress)
    except KeyboardInterrupt:
        if not committed(args.output):
            raise
        # The signal came after the complete image (and its manifest) replaced the output.
        print(f"nexlab build: interrupted after {args.output} was written; it is complete", file=sys.stderr)
        return 0
    if args.json:
        # Read now (a mount build's digest is computed on first read): the image as built.
        data = report.json_dict(result)
    else:
        from nexlab.report.steps import build_text

        print(build_text(result))
    for path in write_sboms(result.output, args.sbom or [], progress):
        # With --json, stdout holds only the JSON object.
        print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    booted = verify_boot(result.output, args.boot_timeout, progress) if args.verify_boot else None
    if args.json:
        from nexlab.report.build_json import dumps

        data["boot"] = report.json_dict(booted) if booted is not None else None
        print(dumps(data), end="")
    elif booted is not None:
        print(report.text(booted))
    return 0


def _sbom_format(text: str) -> str:
    from nexlab import sbom
    from nexlab.errors import SbomError

    try:
        return sbom.parse_format(text)
    except SbomError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def write_sboms(image: Path, formats: list[str], progress: TerminalProgress) -> list[Path]:
    """The SBOMs of the built image beside it (``nexlab.sbom.beside``)."""
    if not formats:
        return []
    from nexlab import sbom

    formats = list(dict.fromkeys(formats))
    with progress.step("sbom", ", ".join(formats)) as step:
        return step.done(sbom.beside(image, formats))


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
    from nexlab.builder.spec import epoch_seconds

    return argparse_type(epoch_seconds)(text)
