"""Whole-process agent-only rebuild (``nexlab build --reproducible`` from the build cache) of a
200 MiB image from the local Debian base against the seed's manual recipe
(``manual_recipe.sh``), both measured in the same run, alternating, median of N; a clean
``--no-cache`` build is measured beside them for reference. Goal: at most 0.3x the recipe.

    python -m tests.benchmarks.bench_build_cached [--runs 5] [--record]

Every run changes the agent (so each is a real agent-only rebuild), and the last
cached image is compared with a clean build of the same agent: a fast rebuild that
is not bit-identical would measure the wrong thing.

A second table measures, in the same run, the parts a rebuild cannot do without
(its floor): Python's start, the imports of a build from the cache, the output's
sha256 (CPU-bound, one stream), the kernel copy of the entry, the agent step's
debugfs session and e2fsck -fn, each on its own.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nexlab
from nexlab import e2fsck
from nexlab.builder.output import sha256_file
from nexlab.builder.reproducible.agent import write_agent
from nexlab.cache import Cache
from nexlab.host import sparse
from tests.benchmarks.record import ASSETS, IMAGE, NEXLAB, RECIPE, record, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    args = parser.parse_args()
    service = ASSETS / "agent.openrc"
    # As pip leaves an installed package: compiled, even where PYTHONDONTWRITEBYTECODE is set
    # (without it every run compiles nexlab's modules first: ~0.3 s on this host).
    compileall.compile_dir(str(Path(nexlab.__file__).parent), quiet=1)
    load_before = os.getloadavg()[0]
    image_id = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", IMAGE], check=True, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="nexlab-bench-cached-", dir="/var/tmp") as scratch:
        root = Path(scratch)
        os.environ["NEXLAB_CACHE_DIR"] = str(root / "cache")
        os.environ["NEXLAB_BUILD_CACHE"] = "on"
        sample = (ASSETS / "sample-agent.sh").read_bytes()

        def agent(index: int) -> Path:
            path = root / f"agent-{index}.sh"
            path.write_bytes(sample + f"# release {index}\n".encode())
            path.chmod(0o755)
            return path

        def ours(index: int, *extra: str) -> list[str]:
            out = root / f"nexlab-{index}{'-clean' if extra else ''}.ext4"
            argv = [NEXLAB, "build", "-q", "--reproducible", "--agent", str(agent(index)), "--image", image_id]
            return [*argv, "--size", "200MiB", "-o", str(out), *extra]

        manual_out = root / "manual.ext4"
        manual = [str(RECIPE), image_id, str(manual_out), "200", str(agent(0)), str(service)]
        clean_times = [timed(ours(0, "--no-cache"))]
        timed(manual), timed(ours(0))  # warm the page cache and Docker's layers; ours(0) fills the cache
        manual_times, cached_times = [], []
        for index in range(1, args.runs + 1):
            manual_times.append(timed(manual))
            cached_times.append(timed(ours(index)))
        clean_times.append(timed(ours(args.runs, "--no-cache")))
        last, clean = root / f"nexlab-{args.runs}.ext4", root / f"nexlab-{args.runs}-clean.ext4"
        identical = sha256_file(last) == sha256_file(clean)
        parts = floor(root, Cache(root / "cache"), last, agent(args.runs), args.runs)
    load = f"load average {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    m, c, k = statistics.median(manual_times), statistics.median(cached_times), statistics.median(clean_times)
    ratio = c / m
    lines = [
        f"_{load}_",
        "",
        "| method | median (s) | runs (s) |",
        "|---|---|---|",
        f"| seed's manual recipe (`manual_recipe.sh`) | {m:.2f} | {', '.join(f'{t:.2f}' for t in manual_times)} |",
        f"| `nexlab build --reproducible`, agent-only rebuild from the cache (200 MiB, {IMAGE}) | {c:.2f} | "
        f"{', '.join(f'{t:.2f}' for t in cached_times)} |",
        f"| `nexlab build --reproducible --no-cache` (reference) | {k:.2f} | "
        f"{', '.join(f'{t:.2f}' for t in clean_times)} |",
        "",
        f"**ratio agent-only rebuild / manual: {ratio:.2f}** (goal ≤ 0.3): {'met' if ratio <= 0.3 else 'NOT met'}; "
        f"last rebuild {'bit-identical to' if identical else 'DIFFERENT from'} a clean build of the same agent",
    ]
    lines += [
        "",
        "Where it goes: each part alone, medians, same run (the floor: a rebuild does each at least once;",
        "e2fsck and the copy of the files' content run beside the sha256)",
        "",
        "| part | median (s) |",
        "|---|---|",
        *(f"| {name} | {seconds:.3f} |" for name, seconds in parts.items()),
    ]
    print("\n".join(lines))
    if args.record:
        record("nexlab build --reproducible, agent-only rebuild from the cache", "\n".join(lines))
    if not identical:
        raise SystemExit("the cached rebuild is not bit-identical to a clean build")


#: What a build from the cache imports (``python -X importtime`` of one), without running it.
HIT_IMPORTS = (
    "import nexlab.cli.main as m; m.parser('build'); import nexlab.builder.reproducible.build, nexlab.report, "
    "nexlab.cli.cmd_clean, nexlab.audit.findings, nexlab.builder.service_check, nexlab.image"
)


def floor(root: Path, cache: Cache, image: Path, agent: Path, runs: int) -> dict[str, float]:
    """Each part of an agent-only rebuild on its own, median of ``runs``."""
    (entry,) = cache.entries()
    python = sys.executable
    scratch = root / "floor.ext4"

    def copied() -> Path:
        scratch.unlink(missing_ok=True)
        sparse.copy(entry.image, scratch)
        return scratch

    def agent_step() -> float:
        target = copied()
        start = time.perf_counter()
        write_agent(target, agent, int(entry.meta["manifest"]["source_date_epoch"]))
        return time.perf_counter() - start

    parts = {
        "Python's start (`python -c pass`)": [timed([python, "-c", "pass"]) for _ in range(runs)],
        "the imports of a build from the cache (Python's start included)": [
            timed([python, "-c", HIT_IMPORTS]) for _ in range(runs)
        ],
        f"sha256 of the output ({image.stat().st_size // 2**20} MiB, holes read as zeros)": [
            _seconds(sparse.sha256, image) for _ in range(runs)
        ],
        "CRC-32 of the entry (its check)": [_seconds(sparse.crc32, entry.image) for _ in range(runs)],
        "the kernel copy of the entry (copy_file_range)": [_seconds(copied) for _ in range(runs)],
        "the agent step's debugfs session": [agent_step() for _ in range(runs)],
        "e2fsck -fn of the output": [_seconds(e2fsck.check, image) for _ in range(runs)],
    }
    scratch.unlink(missing_ok=True)
    return {name: statistics.median(seconds) for name, seconds in parts.items()}


def _seconds(function: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
