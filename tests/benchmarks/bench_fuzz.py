"""How long the reader takes on corrupt images, against the same images intact.

    python -m tests.benchmarks.bench_fuzz [--runs 3] [--count 360] [--record]

The fuzz test (tests/image/test_fuzz.py) checks that every mutation ends in an
answer, warnings or ImageFormatError; how long that takes depends on the load
of the machine, so the time is measured here instead: the full API pass
(``exercise``) over the same seeded mutations, and over the pristine images in
the same run as the baseline. The ratio mutant/pristine says whether corrupt
input makes the reader slow (the worst single mutation is shown too); a hang
would show as a huge ratio, never as a flaky test.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from tests.image.images import SMALL_CASES, make_small_image
from tests.image.test_fuzz import SEED, Target, _regions, exercise, mutate


def _targets(workdir: Path) -> list[Target]:
    out = []
    for case in SMALL_CASES:
        image = make_small_image(case, workdir)
        out.append(Target(image.read_bytes(), _regions(image)))
    return out


def _pass(targets: list[Target], path: Path, count: int, mutated: bool) -> tuple[float, float]:
    """(total seconds, slowest single image) for ``count`` images, mutated or pristine."""
    rng = random.Random(SEED)
    worst = 0.0
    start = time.perf_counter()
    for i in range(count):
        target = targets[i % len(targets)]
        data = mutate(rng, target)[1] if mutated else target.image
        path.write_bytes(data)
        t0 = time.perf_counter()
        exercise(path)
        worst = max(worst, time.perf_counter() - t0)
    return time.perf_counter() - start, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=480)
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nexlab-bench-fuzz-") as scratch:
        work = Path(scratch)
        targets = _targets(work)
        path = work / "image.img"
        _pass(targets, path, len(targets), mutated=False)  # warm-up
        pristine: list[float] = []
        mutant: list[float] = []
        worst = 0.0
        for _ in range(args.runs):
            pristine.append(_pass(targets, path, args.count, mutated=False)[0])
            total, slowest = _pass(targets, path, args.count, mutated=True)
            mutant.append(total)
            worst = max(worst, slowest)
    p, m = statistics.median(pristine), statistics.median(mutant)
    lines = [
        f"{args.count} images per pass (seed {SEED}), {args.runs} runs alternating; medians",
        f"pristine images   {p:6.2f} s   ({p / args.count * 1000:.1f} ms each)",
        f"mutated images    {m:6.2f} s   ({m / args.count * 1000:.1f} ms each, slowest {worst * 1000:.0f} ms)",
        f"ratio mutated/pristine: {m / p:.2f}",
    ]
    print("\n".join(lines))
    if args.record:
        from tests.benchmarks.record import record

        record("reader on corrupt images (bench_fuzz)", "```\n" + "\n".join(lines) + "\n```")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
