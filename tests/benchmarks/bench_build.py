"""Whole-process ``nexlab build`` of a 200 MiB image from the local Debian base
against the seed's manual recipe (dd + mkfs.ext4 + mount + docker run + umount),
both measured in the same run, alternating, median of N.

    python -m tests.benchmarks.bench_build [--runs 5] [--record]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from tests.benchmarks.record import ASSETS, IMAGE, NEXLAB, RECIPE, installed_bytecode, load_average, record, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    args = parser.parse_args()
    agent, service = ASSETS / "sample-agent.sh", ASSETS / "agent.openrc"
    with tempfile.TemporaryDirectory(prefix="nexlab-bench-") as scratch:
        manual_out, nexlab_out = Path(scratch, "manual.ext4"), Path(scratch, "nexlab.ext4")
        manual = [str(RECIPE), IMAGE, str(manual_out), "200", str(agent), str(service)]
        ours = [
            NEXLAB,
            "build",
            "-q",
            "--agent",
            str(agent),
            "--image",
            IMAGE,
            "--size",
            "200MiB",
            "-o",
            str(nexlab_out),
        ]
        compiled = installed_bytecode()
        load_before = load_average()
        timed(manual), timed(ours)  # warm the page cache and Docker's image layers for both
        manual_times, nexlab_times = [], []
        for _ in range(args.runs):
            manual_times.append(timed(manual))
            nexlab_times.append(timed(ours))
    m, n = statistics.median(manual_times), statistics.median(nexlab_times)
    ratio = n / m
    lines = [
        "| method | median (s) | runs (s) |",
        "|---|---|---|",
        f"| seed's manual recipe (`manual_recipe.sh`) | {m:.2f} | {', '.join(f'{t:.2f}' for t in manual_times)} |",
        f"| `nexlab build` (200 MiB, {IMAGE}) | {n:.2f} | {', '.join(f'{t:.2f}' for t in nexlab_times)} |",
        "",
        f"**ratio nexlab / manual: {ratio:.2f}** (target ≤ 1.2)",
        "",
        f"load average (1 min) {load_before} before, {load_average()} after; {compiled}",
    ]
    print("\n".join(lines))
    if args.record:
        record("nexlab build (mount path)", "\n".join(lines))


if __name__ == "__main__":
    main()
