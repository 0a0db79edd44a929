"""``nexlab``: the command line.

Every subcommand parses its flags here and calls the library. Expected failures
(``NexlabError``) print one line and exit non-zero; ``--debug`` shows the
traceback and keeps the run's temporary files (``nexlab.tempdirs``), saying
where. SIGTERM is handled like Ctrl-C so cleanup runs either way.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from nexlab import tempdirs
from nexlab.cli import commands
from nexlab.errors import NexlabError

Handler = Callable[[argparse.Namespace], int]


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, the other commands are there by name and help
    line alone (``nexlab --help`` and every error read the same), so a build does not pay
    for building (and importing what defines) the other commands' options."""
    top = argparse.ArgumentParser(
        prog="nexlab",
        description="Build, audit, diff and boot Firecracker root filesystems for Nex.",
    )
    top.add_argument("--debug", action="store_true", help="log every command, show tracebacks and keep temporary files")
    top.add_argument("--version", action=_Version, help="print nexlab's version")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands.COMMANDS:
        if only is None or only == command.NAME:
            command.register(sub)
        else:
            sub.add_parser(command.NAME, help=command.HELP)
    return top


class _Version(argparse.Action):
    """argparse's ``version`` action, with the version read only when asked for: finding the
    installed distribution (``importlib.metadata``) costs every other command's start-up."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[object] | None,
        option_string: str | None = None,
    ) -> None:
        print(f"nexlab {version()}")
        parser.exit()


def version() -> str:
    """The installed distribution's version (what pip and ``nexlab --version`` say)."""
    from importlib import metadata

    try:
        return metadata.version("nexlab")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        import nexlab

        return nexlab.__version__


def _complete() -> None:
    """Answer the shell's completion request (argcomplete's ``_ARGCOMPLETE`` protocol) and exit.

    Only the parser of the command on the line so far is built, as for a run: the
    words before the cursor say which (none yet: the whole parser, for the names).
    """
    import os
    import shlex

    import argcomplete

    line = os.environ.get("COMP_LINE", "")[: int(os.environ.get("COMP_POINT", "0") or 0)]
    try:
        words = shlex.split(line)[1:]
    except ValueError:  # an open quote: complete as if no command were chosen yet
        words = []
    if words and not line.endswith(" "):
        words = words[:-1]  # the word being typed is not chosen yet
    argcomplete.autocomplete(parser(commands.chosen(words)))


def main(argv: Sequence[str] | None = None) -> int:
    import os

    if argv is None and "_ARGCOMPLETE" in os.environ:
        _complete()
    words = sys.argv[1:] if argv is None else list(argv)
    args = parser(commands.chosen(words)).parse_args(words)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    signal.signal(signal.SIGTERM, _terminate)
    handler: Handler = args.handler
    if args.debug:
        tempdirs.keep()
    try:
        return handler(args)
    except NexlabError as exc:
        if args.debug:
            raise
        print(f"nexlab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        _ignore_signals()  # clean-up is done: a further Ctrl-C must not turn the exit into a crash
        print(f"nexlab {args.command}: interrupted; cleaned up", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141
    finally:
        # The work is over and its result decided: the exit status must say so, whatever arrives now.
        _ignore_signals()
        kept = tempdirs.where()
        if args.debug and kept is not None:
            print(f"nexlab {args.command}: temporary files kept in {kept}", file=sys.stderr)


def _ignore_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
