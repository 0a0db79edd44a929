"""`nexlab cache ls|prune`: the build cache of agent-only rebuilds (``nexlab.cache``)."""

from __future__ import annotations

import argparse
import re
import time

NAME = "cache"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "list or prune the build cache of reproducible builds (agent-only rebuilds)"

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(text: str) -> float:
    """``--older-than``: seconds, or a number with s, m, h, d or w."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (like 3600, 90m, 12h, 7d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def size(text: str) -> int:
    from nexlab.errors import InputError
    from nexlab.sizes import parse_size

    if text.strip() == "0":
        return 0
    try:
        return parse_size(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cache = sub.add_parser(
        NAME,
        help=HELP,
        description="A reproducible build keeps the filesystem it made before writing the agent, keyed by "
        "everything else that shapes it; a build that changes only the agent starts from there and gives "
        "the same bytes. The cache is in $NEXLAB_CACHE_DIR, else $XDG_CACHE_HOME/nexlab, else "
        "/var/cache/nexlab (root) or ~/.cache/nexlab.",
    )
    actions = cache.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("ls", help="list the entries, least recently used first")
    listing.set_defaults(handler=run_ls)
    prune = actions.add_parser(
        "prune", help="remove entries: unused for --older-than, then the least recently used above --max-size"
    )
    prune.add_argument(
        "--max-size", type=size, metavar="SIZE", help="keep at most SIZE on disk (e.g. 2GiB; 0 empties the cache)"
    )
    prune.add_argument(
        "--older-than", type=duration, metavar="AGE", help="remove entries unused for AGE (3600, 90m, 12h, 7d)"
    )
    prune.set_defaults(handler=run_prune)


def _age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f}{unit}"
    return f"{seconds:.0f}s"


def run_ls(args: argparse.Namespace) -> int:
    from nexlab.cache import Cache
    from nexlab.sizes import format_size

    cache = Cache()
    entries = cache.entries()
    if not entries:
        print(f"no entries in {cache.root}")
        return 0
    now = time.time()
    print(f"{'key':<12}  {'on disk':>9}  {'used':>5}  {'made':>5}  inputs")
    for entry in entries:
        used, made = _age(now - entry.used), _age(now - entry.created)
        print(f"{entry.key[:12]:<12}  {format_size(entry.disk_bytes):>9}  {used:>5}  {made:>5}  {entry.description}")
    total = sum(e.disk_bytes for e in entries)
    print(f"{len(entries)} entries, {format_size(total)} in {cache.root}")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from nexlab.cache import Cache
    from nexlab.errors import InputError
    from nexlab.sizes import format_size

    if args.max_size is None and args.older_than is None:
        raise InputError("nexlab cache prune: say what to remove", hint="--max-size SIZE and/or --older-than AGE")
    cache = Cache()
    removed = cache.prune(max_bytes=args.max_size, older_than=args.older_than)
    for entry in removed:
        print(f"removed {entry.key[:12]} ({format_size(entry.disk_bytes)}) {entry.description}")
    left = cache.entries()
    print(f"{len(removed)} removed; {len(left)} left, {format_size(sum(e.disk_bytes for e in left))}")
    return 0
