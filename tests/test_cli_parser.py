"""The command line builds only the parser of the command being run: every help text and
usage error reads as with the whole parser."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

import nexlab
from nexlab.cli import commands
from nexlab.cli.main import main, parser

NAMES = [command.NAME for command in commands.COMMANDS]


def _output(top: argparse.ArgumentParser, argv: list[str]) -> tuple[int, str, str, str]:
    """Exit status, stdout and stderr of parsing ``argv``, and the options parsed (handler aside)."""
    out, err = io.StringIO(), io.StringIO()
    code, parsed = 0, ""
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parsed = str(sorted((k, v) for k, v in vars(top.parse_args(argv)).items() if k != "handler"))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue(), parsed


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        [],
        ["bogus"],
        ["bu"],
        *([name, "--help"] for name in NAMES),
        ["--debug", "audit"],
        ["build"],
        ["build", "--size", "nonsense", "--agent", "a"],
        ["base"],
        ["base", "debian", "--help"],
        ["--help", "build"],
        ["--debug", "clean", "extra"],
    ],
)
def test_only_the_chosen_command_reads_as_the_whole_parser(argv: list[str]) -> None:
    whole = _output(parser(), argv)
    assert _output(parser(commands.chosen(argv)), argv) == whole
    assert any(whole[1:]), "each case prints or parses something"


def test_chosen_is_the_first_word() -> None:
    assert commands.chosen(["--debug", "build", "-o", "x"]) == "build"
    assert commands.chosen(["audit", "build"]) == "audit"
    assert commands.chosen(["--help"]) is None
    assert commands.chosen(["bogus", "build"]) is None


def test_chosen_parser_parses_like_the_whole() -> None:
    argv = ["--debug", "build", "--agent", "a", "--size", "64MiB", "-o", "x.ext4"]
    assert vars(parser("build").parse_args(argv)) == vars(parser().parse_args(argv))


def test_a_build_imports_no_boot_audit_or_pandas() -> None:
    code = (
        "import sys\n"
        "from nexlab.cli import main\n"
        "main.parser('build').parse_args(['build', '--agent', 'a'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('nexlab.boot', 'nexlab.audit', 'pandas'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _parsers(top: argparse.ArgumentParser, name: str = "nexlab") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the command line, nested ones (``base debian``) included, with its command words."""
    yield name, top
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word, child in action.choices.items():
                yield from _parsers(child, f"{name} {word}")


def test_every_option_of_every_command_has_help() -> None:
    missing = []
    for name, each in _parsers(parser()):
        for action in each._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{name} {c.dest}" for c in action._choices_actions if not (c.help or "").strip()]
            elif not (action.help or "").strip():
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


_FLAG = re.compile(r"(?<![\w-])(\w+ )?(--[a-z][a-z-]*)")


def test_help_mentions_only_flags_its_command_has() -> None:
    # A help naming another command's flag says which command ("build --reproducible").
    wrong = []
    names = set(NAMES)
    for name, each in _parsers(parser()):
        flags = {flag for action in each._actions for flag in action.option_strings}
        for action in each._actions:
            for word, flag in _FLAG.findall(action.help or ""):
                if flag not in flags and word.strip() not in names:
                    wrong.append(f"{name} {'/'.join(action.option_strings)}: {flag}")
    assert wrong == []


def test_version_is_the_installed_distribution_s() -> None:
    installed = metadata.version("nexlab")
    for argv in (["nexlab", "--version"], [sys.executable, "-m", "nexlab", "--version"]):
        exe = shutil.which(argv[0], path=str(Path(sys.executable).parent)) if argv[0] == "nexlab" else argv[0]
        done = subprocess.run([str(exe), *argv[1:]], capture_output=True, text=True, check=True)
        assert done.stdout == f"nexlab {installed}\n"
    assert nexlab.__version__ == installed


def test_python_m_nexlab_runs_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "nexlab", "bogus"], capture_output=True, text=True)
    assert done.returncode == 2 and "invalid choice: 'bogus'" in done.stderr and "Traceback" not in done.stderr


COMPLETE = r"""
eval "$(nexlab completion bash)"
complete_line() {
    COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}
    read -ra COMP_WORDS <<< "$COMP_LINE"
    [[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMPREPLY=()
    _python_argcomplete nexlab
    echo "$1|${COMPREPLY[*]}"
}
complete_line "nexlab "
complete_line "nexlab bu"
complete_line "nexlab build --ag"
complete_line "nexlab boot --machine "
complete_line "nexlab --debug audit --fail"
"""


def test_bash_completion_through_argcomplete() -> None:
    """The shell code ``nexlab completion bash`` prints, run by bash as on a Tab press."""
    bash = shutil.which("bash")
    assert bash is not None
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run([bash, "-c", COMPLETE], capture_output=True, text=True, env=env, check=True, timeout=120)
    replies = dict(line.split("|", 1) for line in done.stdout.splitlines())
    assert set(replies["nexlab "].split()) >= {*NAMES, "--version", "--debug"}
    assert replies["nexlab bu"].split() == ["build", "build-many"]
    assert replies["nexlab build --ag"].split() == ["--agent"]
    assert replies["nexlab boot --machine "].split() == ["auto", "microvm", "q35", "virt"]
    assert replies["nexlab --debug audit --fail"].split() == ["--fail-on"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "tcsh"])
def test_completion_prints_shell_code(shell: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["completion", shell]) == 0
    assert "nexlab" in out.getvalue()
    if shell in ("bash", "zsh"):
        assert "_ARGCOMPLETE=1" in out.getvalue()
