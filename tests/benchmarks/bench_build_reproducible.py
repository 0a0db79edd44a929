"""Whole-process ``nexlab build --reproducible`` of a 200 MiB image from the local Debian
base against the seed's manual recipe (dd + mkfs.ext4 + mount + docker run with the
setup and tar copy + umount, ``manual_recipe.sh``), both measured in the same run,
alternating, median of N. Goal: at most 2× the manual recipe.

    python -m tests.benchmarks.bench_build_reproducible [--runs 5] [--record]

Also checks that every reproducible run gave the same sha256: a fast build that
is not reproducible would measure the wrong thing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from nexlab.builder.output import sha256_file
from tests.benchmarks.record import ASSETS, IMAGE, NEXLAB, RECIPE, record, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    args = parser.parse_args()
    agent, service = ASSETS / "sample-agent.sh", ASSETS / "agent.openrc"
    # By image ID, so a re-import of the tag during the run cannot change the inputs.
    image_id = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", IMAGE], check=True, capture_output=True, text=True
    ).stdout.strip()
    hashes: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="nexlab-bench-") as scratch:
        manual_out, ours_out = Path(scratch, "manual.ext4"), Path(scratch, "nexlab.ext4")
        manual = [str(RECIPE), image_id, str(manual_out), "200", str(agent), str(service)]
        ours = [NEXLAB, "build", "-q", "--reproducible", "--no-cache", "--agent", str(agent), "--image", image_id]
        ours += ["--size", "200MiB", "-o", str(ours_out)]
        timed(manual), timed(ours)  # warm the page cache and Docker's image layers for both
        manual_times, ours_times = [], []
        for _ in range(args.runs):
            manual_times.append(timed(manual))
            ours_times.append(timed(ours))
            hashes.add(sha256_file(ours_out))
    m, n = statistics.median(manual_times), statistics.median(ours_times)
    ratio = n / m
    lines = [
        "| method | median (s) | runs (s) |",
        "|---|---|---|",
        f"| seed's manual recipe (`manual_recipe.sh`) | {m:.2f} | {', '.join(f'{t:.2f}' for t in manual_times)} |",
        f"| `nexlab build --reproducible --no-cache` (200 MiB, {IMAGE}) | {n:.2f} | "
        f"{', '.join(f'{t:.2f}' for t in ours_times)} |",
        "",
        f"**ratio nexlab --reproducible / manual: {ratio:.2f}** (goal ≤ 2): {'met' if ratio <= 2 else 'NOT met'}; "
        f"{len(ours_times)} reproducible runs, {len(hashes)} distinct sha256 "
        f"({'bit-identical' if len(hashes) == 1 else 'NOT reproducible'})",
    ]
    print("\n".join(lines))
    if args.record:
        record("nexlab build --reproducible", "\n".join(lines))


if __name__ == "__main__":
    main()
