"""The ext4 reader against the kernel, on the ~1.2 GB benchmark image.

    python -m tests.benchmarks.bench_reader [--runs 3] [--record] [--image IMAGE]

(a) the kernel path: loop mount read-only + ``os.walk`` + ``lstat`` + sha256 of
    every file in Python + umount;
(b) the reader: ``open_image`` + ``walk()`` + ``sha256_files()`` (two threads);
(c) (b) as a whole process, interpreter start-up included.
Each method runs once untimed first, so both read from a warm page cache;
nothing is dropped from caches. Timed runs alternate; medians are reported,
with the ratio b/a (the goal is ≤ 0.7). Both paths must find the same digests.
Needs root for the mount.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from nexlab.builder.mount import mount
from nexlab.image import open_image
from tests.benchmarks.images import bench_image

READER_PROCESS = (
    "import sys\n"
    "from nexlab.image import open_image\n"
    "with open_image(sys.argv[1]) as fs:\n"
    "    print(len(fs.sha256_files(list(fs.walk()))))\n"
)


def kernel_path(image: Path) -> dict[str, str]:
    """path -> sha256 of every regular file, through a read-only loop mount."""
    digests: dict[str, str] = {}
    with mount(image, read_only=True) as mounted:
        root = str(mounted.path)
        for directory, dirs, files in os.walk(root):
            for name in dirs + files:
                path = os.path.join(directory, name)
                st = os.lstat(path)
                if (st.st_mode & 0o170000) == 0o100000:
                    with open(path, "rb") as handle:
                        digests["/" + os.path.relpath(path, root)] = hashlib.file_digest(handle, "sha256").hexdigest()
    return digests


def reader_path(image: Path) -> dict[str, str]:
    with open_image(image) as fs:
        entries = list(fs.walk())
        by_inode = fs.sha256_files(entries)
        if fs.warnings:
            raise SystemExit(f"reader warnings on the benchmark image: {fs.warnings[:3]}")
    return {e.path: by_inode[e.inode] for e in entries if e.type == "file"}


def reader_process(image: Path) -> None:
    subprocess.run([sys.executable, "-c", READER_PROCESS, str(image)], check=True, capture_output=True)


def timed(function: Callable[[Path], object], image: Path) -> float:
    start = time.perf_counter()
    function(image)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image", type=Path, help="another image instead of the cached benchmark image")
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_reader needs root: the kernel path loop-mounts the image", file=sys.stderr)
        return 2
    image = args.image or bench_image("a")
    with open_image(image) as fs:
        entries = list(fs.walk())
        files = [e for e in entries if e.type == "file"]
        data = sum(e.size for e in {e.inode: e for e in files}.values())
    # Untimed warm-up of each, which also checks that both paths see the same content.
    if kernel_path(image) != reader_path(image):
        print("the reader and the kernel disagree on the content of the image", file=sys.stderr)
        return 1
    reader_process(image)
    times: dict[str, list[float]] = {"kernel": [], "reader": [], "process": []}
    for _ in range(args.runs):
        times["kernel"].append(timed(kernel_path, image))
        times["reader"].append(timed(reader_path, image))
        times["process"].append(timed(reader_process, image))
    a, b, c = (statistics.median(times[k]) for k in ("kernel", "reader", "process"))
    lines = [
        f"image: {image} ({image.stat().st_size / 1e9:.2f} GB, {len(entries)} entries, "
        f"{len(files)} files, {data / 1e6:.0f} MB of data)",
        f"runs: {args.runs} each, alternating, warm cache; medians",
        f"(a) kernel: mount + os.walk + sha256 + umount   {a:6.2f} s   {_spread(times['kernel'])}",
        f"(b) reader: open_image + walk + sha256_files    {b:6.2f} s   {_spread(times['reader'])}",
        f"(c) reader as a whole process                   {c:6.2f} s   {_spread(times['process'])}",
        f"ratio b/a: {b / a:.2f}   ratio c/a: {c / a:.2f}   (goal ≤ 0.70)",
    ]
    print("\n".join(lines))
    if args.record:
        from tests.benchmarks.record import record

        record("ext4 reader vs kernel (bench_reader)", "```\n" + "\n".join(lines) + "\n```")
    return 0


def _spread(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


if __name__ == "__main__":
    raise SystemExit(main())
