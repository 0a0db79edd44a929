"""The audit at 100k (default) and 1M files (``--scale 1m``, long): time and memory against
the issue-16 goals, everything measured side by side in one run, alternating, median of N.

    python -m tests.benchmarks.bench_audit_scale [--scale 10k|100k|1m] [--runs 3] [--record]

Measured, each as a whole process with a warm page cache:

- ``nexlab audit IMAGE --json >/dev/null`` and the same with ``--no-hash``;
- the sha256 floor: the same number of bytes in the same file sizes hashed from memory on
  two threads (what hashing alone costs on this machine, no reading, no metadata);
- the kernel path: loop mount + ``os.walk`` + sha256 of every file on two threads + umount;
- ``e2fsck -fn`` (reads the same inodes and directories);
- the reader alone (``READER``, one process): ``list(walk())`` and ``sha256_files`` of every
  file, each timed inside the process: the walk's cost per path and the reader's hashing
  throughput next to the floor's (issue 16's reader goals: ~10 µs per file, within ~1.2×);
- the fixed start-up: ``nexlab audit --json --no-hash`` of an empty 16 MiB ext4, so the
  audit's metadata cost per file is (``--no-hash`` − start-up) / files.

The load average is printed with the numbers (the machine is shared; compare the ratios).

Peak anonymous memory (``RssAnon``, sampled every 10 ms from /proc; the image's mmap is
file-backed and not counted) of both audits; the constant is the peak of
``nexlab audit --list-rules`` (interpreter and imports).

Goals: audit ≤ 1.5 × floor + 10 µs per file; peak anon ≤ 600 B per file + the constant;
``--no-hash`` at 1M files under 15 s. The images are ``images.py:scale_image`` (seeded,
cached under /var/tmp/nexlab-bench/); the 1M image uses smaller files (~5 KB on average,
~5 GB of data) than the 100k one (~38 KB, 3.8 GB), see ``images.SCALES`` for why. Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.images import SCALES, scale_image
from tests.benchmarks.record import NEXLAB, record

#: The kernel path with two hashing threads, mount and umount included.
KERNEL_PATH = r"""
import hashlib, os, sys
from concurrent.futures import ThreadPoolExecutor
from nexlab.builder.mount import mount

def one(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

with mount(sys.argv[1], read_only=True) as mounted:
    files = []
    for directory, dirs, names in os.walk(mounted.path):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                files.append(path)
    with ThreadPoolExecutor(2) as pool:
        print(sum(1 for _ in pool.map(one, files, chunksize=256)))
"""

#: The floor: the same sizes hashed from a buffer in memory, on two threads, in batches.
FLOOR = r"""
import hashlib, json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
sizes = json.load(open(sys.argv[1]))
pool = memoryview(bytes(range(256)) * (32 << 10))  # 8 MiB
batches, batch, total = [], [], 0
for size in sizes:
    batch.append(size); total += size
    if total >= 4 << 20:
        batches.append(batch); batch, total = [], 0
batches.append(batch)

def run(batch):
    offset = 0
    for size in batch:
        if offset + size > len(pool):
            offset = 0
        hashlib.sha256(pool[offset:offset + size]).hexdigest()
        offset += size
    return len(batch)

began, began_cpu = time.perf_counter(), sum(os.times()[:2])
with ThreadPoolExecutor(2) as workers:
    count = sum(workers.map(run, batches))
print(json.dumps({"files": count, "hash": time.perf_counter() - began, "hash_cpu": sum(os.times()[:2]) - began_cpu}))
"""


#: The reader alone: the walk and the hashing of every regular file, each timed in the process.
READER = r"""
import json, os, sys, time
from nexlab.image import open_image

def cpu():
    times = os.times()
    return times.user + times.system

with open_image(sys.argv[1]) as fs:
    began, began_cpu = time.perf_counter(), cpu()
    entries = list(fs.walk())
    walked, walked_cpu = time.perf_counter(), cpu()
    hashes = fs.sha256_files([e for e in entries if e.type == "file"], workers=2)
    hashed, hashed_cpu = time.perf_counter(), cpu()
print(json.dumps({"paths": len(entries), "walk": walked - began, "hash": hashed - walked, "files": len(hashes),
                  "walk_cpu": walked_cpu - began_cpu, "hash_cpu": hashed_cpu - walked_cpu}))
"""


def measure(argv: list[str], out: list[str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RssAnon bytes of a whole command (stdout discarded, or appended
    to ``out``)."""
    start = time.perf_counter()
    stdout = subprocess.PIPE if out is not None else subprocess.DEVNULL
    process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL, text=True)
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("RssAnon:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
                    break
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    if out is not None and process.stdout is not None:
        out.append(process.stdout.read())
    if process.returncode not in (0, 1):  # 1: a gate rule failed, still a full report
        raise SystemExit(f"{argv[:3]} exited {process.returncode}")
    return seconds, peak


def warm(image: Path) -> None:
    """Read the whole image so it is in the page cache. The kernel path's loop mount caches the
    filesystem a second time (the loop device's own cache), which at 1M files (10.7 GB, twice,
    on a 24 GB machine) pushes the image out and leaves the next command reading the disk."""
    with open(image, "rb", buffering=0) as handle:
        buffer = bytearray(16 << 20)
        while handle.readinto(buffer):
            pass


def file_sizes(image: Path) -> list[int]:
    """Sizes of the regular files, one per inode, from the audit's own JSON (no hashing)."""
    out = subprocess.run(
        [NEXLAB, "audit", str(image), "--json", "--no-hash", "--no-fsck"], capture_output=True, check=False
    ).stdout
    seen: dict[int, int] = {}
    for record_ in json.loads(out)["files"]:
        if record_["type"] == "file":
            seen.setdefault(record_["inode"], record_["size"])
    return list(seen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="100k")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    args = parser.parse_args()
    image = scale_image(args.scale)
    sizes = file_sizes(image)
    files, data = len(sizes), sum(sizes)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        sizes_json = Path(scratch) / "sizes.json"
        sizes_json.write_text(json.dumps(sizes))
        empty = Path(scratch) / "empty.ext4"
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(empty), "16M"], check=True, capture_output=True)
        commands = {
            "audit": [NEXLAB, "audit", str(image), "--json"],
            "no-hash": [NEXLAB, "audit", str(image), "--json", "--no-hash"],
            "floor": [sys.executable, "-c", FLOOR, str(sizes_json)],
            "reader": [sys.executable, "-c", READER, str(image)],
            "startup": [NEXLAB, "audit", str(empty), "--json", "--no-hash"],
            "kernel": [sys.executable, "-c", KERNEL_PATH, str(image)],
            "e2fsck": ["e2fsck", "-fn", str(image)],
        }
        # The kernel path last in each round: what it pushes out of the cache, warm() puts back.
        commands["kernel"] = commands.pop("kernel")
        constant = measure([NEXLAB, "audit", "--list-rules"])[1]
        for argv in commands.values():
            measure(argv)  # warm the page cache for everyone
        times: dict[str, list[float]] = {name: [] for name in commands}
        peaks: dict[str, list[int]] = {name: [] for name in commands}
        inside: dict[str, list[dict[str, float]]] = {"reader": [], "floor": []}
        for _ in range(args.runs):
            warm(image)  # each round starts from a warm cache (see warm)
            for name, argv in commands.items():
                out: list[str] = []
                seconds, peak = measure(argv, out if name in inside else None)
                times[name].append(seconds)
                peaks[name].append(peak)
                if out:
                    inside[name].append(json.loads(out[0]))
    load_after = os.getloadavg()
    t = {name: statistics.median(values) for name, values in times.items()}
    m = {name: max(values) for name, values in peaks.items()}
    walk = statistics.median(r["walk"] for r in inside["reader"])
    walk_cpu = statistics.median(r["walk_cpu"] for r in inside["reader"])
    hashing = statistics.median(r["hash"] for r in inside["reader"])
    hashing_cpu = statistics.median(r["hash_cpu"] for r in inside["reader"])
    floor_hashing = statistics.median(r["hash"] for r in inside["floor"])
    floor_cpu = statistics.median(r["hash_cpu"] for r in inside["floor"])
    paths = int(inside["reader"][0]["paths"])
    goal_time = 1.5 * t["floor"] + 10e-6 * files
    goal_memory = 600 * files + constant
    metadata = (t["no-hash"] - t["startup"]) / files
    lines = [
        f"image: scale_image({args.scale!r}), {image.stat().st_size / 1e9:.2f} GB, {files:,} regular files, "
        f"{paths:,} paths, {data / 1e9:.2f} GB of data; medians of {args.runs}, warm page cache; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (2 cores, shared)",
        "| | time (median) | runs | peak anon |",
        "|---|---|---|---|",
    ]
    labels = {
        "audit": "`nexlab audit --json`",
        "no-hash": "`nexlab audit --json --no-hash`",
        "floor": "sha256 floor (same sizes from memory, 2 threads)",
        "reader": "reader alone: walk + sha256_files (2 threads), one process",
        "startup": "`nexlab audit --json --no-hash` of an empty 16 MiB ext4 (start-up)",
        "kernel": "mount + walk + sha256 (2 threads) + umount",
        "e2fsck": "`e2fsck -fn`",
    }
    for name, label in labels.items():
        spread = ", ".join(f"{v:.2f}" for v in times[name])
        lines.append(f"| {label} | {t[name]:.2f} s | {spread} | {m[name] / 1e6:.0f} MB |")
    lines += [
        "",
        f"- time: audit {t['audit']:.2f} s vs goal 1.5 × floor + 10 µs/file = {goal_time:.2f} s "
        f"(ratio {t['audit'] / goal_time:.2f}): {'met' if t['audit'] <= goal_time else 'NOT met'}; "
        f"hashing throughput of the audit beyond --no-hash: "
        f"{data / max(t['audit'] - t['no-hash'], 1e-9) / 1e6:.0f} MB/s (floor {data / t['floor'] / 1e6:.0f} MB/s); "
        f"audit / kernel path {t['audit'] / t['kernel']:.2f}",
        f"- memory: peak anon {m['audit'] / 1e6:.0f} MB = {(m['audit'] - constant) / files:.0f} B/file "
        f"+ {constant / 1e6:.0f} MB constant; goal ≤ 600 B/file ({goal_memory / 1e6:.0f} MB): "
        f"{'met' if m['audit'] <= goal_memory else 'NOT met'}",
    ]
    lines += [
        f"- reader: walk {walk:.2f} s = {walk / paths * 1e6:.1f} µs per path ({walk_cpu / paths * 1e6:.1f} µs of CPU); "
        f"sha256_files {hashing:.2f} s = {data / hashing / 1e6:.0f} MB/s vs the floor's hashing "
        f"{floor_hashing:.2f} s = {data / floor_hashing / 1e6:.0f} MB/s (both timed inside their process): "
        f"{hashing / floor_hashing:.2f} × (goal ~1.2: {'met' if hashing <= 1.2 * floor_hashing else 'NOT met'}); "
        f"in CPU seconds (user + sys, less sensitive to the load) {hashing_cpu:.2f} vs {floor_cpu:.2f}: "
        f"{hashing_cpu / floor_cpu:.2f} ×",
        f"- metadata: (--no-hash {t['no-hash']:.2f} s − start-up {t['startup']:.2f} s) / files = "
        f"{metadata * 1e6:.1f} µs per file (goal ≤ 10: {'met' if metadata <= 10e-6 else 'NOT met'})",
    ]
    if files >= 1_000_000:
        ok = t["no-hash"] < 15
        lines.append(f"- --no-hash at {files:,} files: {t['no-hash']:.2f} s, goal < 15 s: {'met' if ok else 'NOT met'}")
    print("\n".join(lines))
    if args.record:
        record(f"nexlab audit at scale ({args.scale})", "\n".join(lines))


if __name__ == "__main__":
    main()
