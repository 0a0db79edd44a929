"""The command line builds only the parser of the command being run: every help text and
usage error reads as with the whole parser."""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys

import pytest

from nexlab.cli import commands
from nexlab.cli.main import parser

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
