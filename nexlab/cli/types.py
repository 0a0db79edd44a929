"""Types shared by the subcommand modules."""

from typing import Any

#: argparse's _SubParsersAction is private; each cmd_*.register takes it.
Subparsers = Any
