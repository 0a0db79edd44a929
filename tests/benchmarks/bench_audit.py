"""Whole-process ``nexlab audit IMAGE --json >/dev/null`` against the kernel path
(loop mount + ``os.walk`` + sha256 of every file in Python, in a subprocess,
mount and umount included), both measured in the same run, alternating,
median of N. The goal is a ratio of at most 0.7.

    python -m tests.benchmarks.bench_audit [--runs 5] [--record] [--image IMAGE]

The image is ``tests/benchmarks/images.py:bench_image()`` (~1.2 GB, ~4,000
files, ~600 MB of data, cached). Needs root (the kernel path mounts).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from tests.benchmarks.images import bench_image
from tests.benchmarks.record import NEXLAB, record, timed

#: The kernel path, as a user would write it: mount read-only, walk, hash, unmount.
KERNEL_PATH = r"""
import hashlib, os, sys
from nexlab.builder.mount import mount
with mount(sys.argv[1], read_only=True) as mounted:
    count = 0
    for directory, dirs, files in os.walk(mounted.path):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if os.path.isfile(path) and not os.path.islink(path):
                digest = hashlib.sha256()
                with open(path, "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
                count += 1
print(count)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    parser.add_argument("--image", type=Path, help="audit this image instead of generating one")
    args = parser.parse_args()
    image = args.image or bench_image()
    ours = [NEXLAB, "audit", str(image), "--json"]
    kernel = [sys.executable, "-c", KERNEL_PATH, str(image)]
    timed(ours), timed(kernel)  # warm the page cache for both
    ours_times, kernel_times = [], []
    for _ in range(args.runs):
        kernel_times.append(timed(kernel))
        ours_times.append(timed(ours))
    size = image.stat().st_size
    files = subprocess.run(
        [NEXLAB, "audit", str(image), "--json", "--no-fsck"], check=True, capture_output=True, text=True
    ).stdout.count('"type": "file"')
    ours_median, kernel_median = statistics.median(ours_times), statistics.median(kernel_times)
    ratio = ours_median / kernel_median
    lines = [
        f"image: {size / 1e9:.2f} GB, {files} regular files ({'given' if args.image else 'images.py bench_image()'})",
        f"nexlab audit --json (whole process, e2fsck -fn included): median {ours_median:.2f} s "
        f"({', '.join(f'{t:.2f}' for t in ours_times)})",
        f"kernel path (mount + os.walk + sha256 + umount, subprocess): median {kernel_median:.2f} s "
        f"({', '.join(f'{t:.2f}' for t in kernel_times)})",
        f"ratio: {ratio:.2f} (goal <= 0.70): {'met' if ratio <= 0.7 else 'NOT met'}",
    ]
    print("\n".join(lines))
    if args.record:
        record("nexlab audit", "\n".join(f"- {line}" for line in lines))


if __name__ == "__main__":
    main()
