"""The subcommands: each lives in ``cmd_<name>.py`` with ``NAME``, ``HELP`` and a ``register(sub)``
that sets ``handler``."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from nexlab.cli import (
    cmd_audit,
    cmd_base,
    cmd_boot,
    cmd_build,
    cmd_build_many,
    cmd_cache,
    cmd_clean,
    cmd_completion,
    cmd_diff,
    cmd_repro,
    cmd_resize,
    cmd_slim,
)

#: In ``nexlab --help`` order.
COMMANDS: tuple[ModuleType, ...] = (
    cmd_build,
    cmd_build_many,
    cmd_base,
    cmd_audit,
    cmd_diff,
    cmd_repro,
    cmd_boot,
    cmd_resize,
    cmd_slim,
    cmd_cache,
    cmd_clean,
    cmd_completion,
)


def chosen(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs, as argparse will find it (the top level has only flags that
    take no value, so it is the first word not starting with ``-``), or None if it names none."""
    names = {command.NAME for command in COMMANDS}
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return word if word in names else None
