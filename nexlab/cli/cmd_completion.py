"""`nexlab completion bash|zsh|fish|tcsh`: the shell code that completes nexlab's commands and options.

``eval "$(nexlab completion bash)"`` (in ~/.bashrc) makes the shell ask nexlab
itself, through argcomplete, for the words that fit: the completion is the
parser's, so it never goes stale.
"""

from __future__ import annotations

import argparse

NAME = "completion"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "shell code for Tab completion"

SHELLS = ("bash", "zsh", "fish", "tcsh")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    completion = sub.add_parser(
        NAME,
        help=HELP,
        description="Print the shell code that completes nexlab's commands and options (argcomplete). "
        'For bash, add to ~/.bashrc: eval "$(nexlab completion bash)".',
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    completion.set_defaults(handler=run_completion)


def run_completion(args: argparse.Namespace) -> int:
    import argcomplete

    print(argcomplete.shellcode(["nexlab"], shell=args.shell), end="")
    return 0
