"""Whole-process ``nexlab diff A B --json`` of two ~1.2 GB images (~4,000 files) against
one ``nexlab audit A --json`` (goal: at most 2×) and against diffoscope on the two
images loop-mounted read-only (goal: at least 20× faster), all in the same run.
nexlab and the audit alternate, median of N; diffoscope runs once, without
``--timeout`` (it takes tens of seconds).

    python -m tests.benchmarks.bench_diff [--runs 5] [--record]

Needs root (the diffoscope baseline mounts). The images are
``tests/benchmarks/images.py:bench_image("a")`` and ``("b")``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from nexlab.builder.mount import mount
from tests.benchmarks.images import CHANGES_B, bench_image
from tests.benchmarks.record import NEXLAB, record, timed


def diffoscope_on_mounts(a: Path, b: Path) -> float:
    """diffoscope on the two filesystems as the kernel shows them, mount time included."""
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        left = stack.enter_context(mount(a, read_only=True))
        right = stack.enter_context(mount(b, read_only=True))
        # Exit status 1 means "differences found", which is expected.
        result = subprocess.run(
            ["diffoscope", "--no-progress", "--text", "/dev/null", str(left.path), str(right.path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode not in (0, 1):
            raise SystemExit(f"diffoscope exited {result.returncode}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    args = parser.parse_args()
    a, b = bench_image("a"), bench_image("b")
    ours = [NEXLAB, "diff", "--json", str(a), str(b)]
    audit = [NEXLAB, "audit", "--json", str(a)]
    # The differ must find exactly the known changes, or its speed means nothing.
    found = json.loads(subprocess.run(ours, capture_output=True, text=True, check=False).stdout)
    paths = {c["path"] for c in found["changes"]}
    assert paths == set(CHANGES_B.values()), sorted(paths ^ set(CHANGES_B.values()))
    timed(ours, ok=(1,)), timed(audit, ok=(0, 1))  # warm the page cache for both
    ours_times, audit_times = [], []
    for _ in range(args.runs):
        audit_times.append(timed(audit, ok=(0, 1)))
        ours_times.append(timed(ours, ok=(1,)))
    diffoscope = diffoscope_on_mounts(a, b) if shutil.which("diffoscope") else None
    ours_median, audit_median = statistics.median(ours_times), statistics.median(audit_times)
    lines = [
        f"images: 2 × {a.stat().st_size / 1e9:.2f} GB, {found['entries']['a']} entries each "
        f"(images.py bench_image a/b, {len(CHANGES_B)} known changes, all found)",
        f"nexlab diff --json (whole process): median {ours_median:.2f} s ({', '.join(f'{t:.2f}' for t in ours_times)})",
        f"nexlab audit --json of one image: median {audit_median:.2f} s ({', '.join(f'{t:.2f}' for t in audit_times)})",
        f"ratio diff / audit: {ours_median / audit_median:.2f} (goal <= 2): "
        f"{'met' if ours_median <= 2 * audit_median else 'NOT met'}",
    ]
    if diffoscope is None:
        lines.append("diffoscope: not installed (apt-get install diffoscope); no comparison")
    else:
        speedup = diffoscope / ours_median
        lines += [
            f"diffoscope 240 on both images loop-mounted read-only (one run, no --timeout, mounts included): "
            f"{diffoscope:.1f} s",
            f"speed-up over diffoscope: {speedup:.1f}× (goal >= 20×): {'met' if speedup >= 20 else 'NOT met'}",
        ]
    print("\n".join(lines))
    if args.record:
        record("nexlab diff", "\n".join(f"- {line}" for line in lines))


if __name__ == "__main__":
    main()
