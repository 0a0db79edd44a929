"""Whole-process ``nexlab audit IMAGE --json >/dev/null`` against the kernel path
(loop mount + ``os.walk`` + sha256 of every file in Python, in a subprocess,
mount and umount included), both measured in the same run, alternating,
median of N. The goal is a ratio of at most 0.7.

    python -m tests.benchmarks.bench_audit [--runs 5] [--record] [--image IMAGE]

The image is ``tests/benchmarks/images.py:bench_image()`` (~1.2 GB, ~4,000
files, ~600 MB of data) when that generator exists, else an equivalent one made
here with ``mkfs.ext4 -d``. Needs root (the kernel path mounts).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.record import record

NEXLAB = str(Path(sys.executable).with_name("nexlab"))

#: The kernel path, as a user would write it: mount read-only, walk, hash, unmount.
KERNEL_PATH = r"""
import hashlib, os, sys
from nexlab.build.mount import mount
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


def fallback_image(path: Path) -> Path:
    """~1.2 GB ext4, ~4,000 files, ~600 MB of incompressible data, a few hardlinks and symlinks."""
    rng = random.Random(20260101)
    with tempfile.TemporaryDirectory(prefix="nexlab-bench-staging-", dir=path.parent) as scratch:
        root = Path(scratch)
        total = 0
        for index in range(4000):
            directory = root / f"d{index % 40:02d}" / f"s{index % 7}"
            directory.mkdir(parents=True, exist_ok=True)
            # Mostly small files, a few large ones: like a rootfs plus a workload.
            size = rng.randint(8 << 20, 20 << 20) if index % 100 == 0 else rng.randint(1 << 10, 96 << 10)
            (directory / f"f{index:05d}.bin").write_bytes(os.urandom(size))
            total += size
        for index in range(14):  # d00/s0 holds every 280th file
            os.link(root / "d00" / "s0" / f"f{index * 280:05d}.bin", root / f"hardlink{index}")
            os.symlink(f"d00/s0/f{index * 280:05d}.bin", root / f"link{index}")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(path), "1200M"], check=True)
    return path


def bench_image(path: Path) -> Path:
    try:
        from tests.benchmarks import images
    except ImportError:
        return fallback_image(path)
    made: Path = images.bench_image(path) if _takes_path(images.bench_image) else images.bench_image()
    return made


def _takes_path(function: object) -> bool:
    import inspect

    return bool(inspect.signature(function).parameters)  # type: ignore[arg-type]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    parser.add_argument("--image", type=Path, help="audit this image instead of generating one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nexlab-bench-", dir=os.environ.get("TMPDIR", "/var/tmp")) as scratch:
        image = args.image or bench_image(Path(scratch) / "bench.ext4")
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
        f"image: {size / 1e9:.2f} GB, {files} regular files ({'given' if args.image else 'generated'})",
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
