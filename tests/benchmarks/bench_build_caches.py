"""``nexlab build`` at 200 MiB from a base with apt caches and lists left in (a
Dockerfile's ``apt-get install`` without a clean, built here with the docker SDK)
against the seed's manual recipe, which copies ``bin etc lib root sbin usr`` only,
so the caches under /var never cost it anything. Both measured in the same run,
alternating, median of N.

    python -m tests.benchmarks.bench_build_caches [--runs 3] [--record]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import uuid
from pathlib import Path

from tests.benchmarks.record import ASSETS, IMAGE, NEXLAB, RECIPE, installed_bytecode, load_average, record, timed

SEED_DIRS = "bin etc lib root sbin usr"


def caches_base() -> str:
    import docker

    client = docker.from_env(timeout=600)
    tag = f"nexlab-bench/caches:{uuid.uuid4().hex[:12]}"
    dockerfile = f"FROM {IMAGE}\nRUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True)
    return tag


def main() -> None:
    import docker

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    args = parser.parse_args()
    agent, service = ASSETS / "sample-agent.sh", ASSETS / "agent.openrc"
    image = caches_base()
    try:
        with tempfile.TemporaryDirectory(prefix="nexlab-bench-") as scratch:
            manual_out, nexlab_out = Path(scratch, "manual.ext4"), Path(scratch, "nexlab.ext4")
            manual = [str(RECIPE), image, str(manual_out), "200", str(agent), str(service), SEED_DIRS]
            ours = [NEXLAB, "build", "-q", "--agent", str(agent), "--image", image, "--size", "200MiB"]
            ours += ["-o", str(nexlab_out)]
            compiled = installed_bytecode()
            load_before = load_average()
            timed(manual), timed(ours)  # warm the page cache and Docker's image layers for both
            manual_times, nexlab_times = [], []
            for _ in range(args.runs):
                manual_times.append(timed(manual))
                nexlab_times.append(timed(ours))
    finally:
        docker.from_env().images.remove(image, force=True)
    m, n = statistics.median(manual_times), statistics.median(nexlab_times)
    ratio = n / m
    lines = [
        "| method | median (s) | runs (s) |",
        "|---|---|---|",
        f"| seed's recipe, `{SEED_DIRS}` only | {m:.2f} | {', '.join(f'{t:.2f}' for t in manual_times)} |",
        f"| `nexlab build` (200 MiB, base with apt caches) | {n:.2f} | {', '.join(f'{t:.2f}' for t in nexlab_times)} |",
        "",
        f"**ratio nexlab / seed recipe: {ratio:.2f}** (target ≤ 1.2)",
        "",
        f"load average (1 min) {load_before} before, {load_average()} after; {compiled}",
    ]
    print("\n".join(lines))
    if args.record:
        record("nexlab build from a base with caches (mount path)", "\n".join(lines))


if __name__ == "__main__":
    main()
