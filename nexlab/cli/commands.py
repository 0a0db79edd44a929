"""The subcommands: each lives in ``cmd_<name>.py`` with a ``register(sub)`` that sets ``handler``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from nexlab.cli import cmd_audit, cmd_base, cmd_boot, cmd_build, cmd_clean, cmd_diff, cmd_repro

REGISTRY: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    cmd_build.register,
    cmd_base.register,
    cmd_audit.register,
    cmd_diff.register,
    cmd_repro.register,
    cmd_boot.register,
    cmd_clean.register,
]
