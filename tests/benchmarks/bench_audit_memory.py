"""The audit's peak memory at 100k (default) and 1M files (``--scale 1m``) against the issue-16
goal, next to the record-per-path layout it replaced, measured side by side in one run.

    python -m tests.benchmarks.bench_audit_memory [--scale 10k|100k|1m] [--runs 2] [--record]

Each is a whole process; its peak anonymous memory (``RssAnon``, sampled every 10 ms
from /proc; the image's mmap is file-backed and not counted) is the largest of the runs:

- ``nexlab audit IMAGE --json`` (stdout discarded) and the same with ``--no-hash``;
- ``nexlab audit IMAGE --json-file F --html H``: the report files, the JSON streamed;
- the baseline, the record-per-path layout: the reader's walk kept as a list of entries
  and a dict of one ``FileRecord`` per path, as ``audit()`` held them before the columns
  (no hashing, no packages, no rules: less than that audit did, so a fair floor for it);
- the constant: ``nexlab audit --list-rules`` (interpreter and imports).

Goal (issue 16): peak anon ≤ 600 B per file + the constant (1M files: under ~700 MB).
The images are ``images.py:scale_image`` (cached under /var/tmp/nexlab-bench/; the time
side of the same images is ``bench_audit_scale``). Needs root only to build the images.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from tests.benchmarks.bench_audit_scale import measure
from tests.benchmarks.images import SCALES, scale_image
from tests.benchmarks.record import NEXLAB, record

#: The record-per-path layout: the walk as a list, one FileRecord per path in a dict.
RECORDS = r"""
import sys
from nexlab.audit.inventory import record_from_entry
from nexlab.image import open_image

with open_image(sys.argv[1]) as fs:
    entries = list(fs.walk())
    records = {e.path: record_from_entry(e, None, None) for e in entries}
with open(sys.argv[2], "w") as out:
    out.write(str(len(records)))
"""

GOAL = 600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="100k")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    args = parser.parse_args()
    image = scale_image(args.scale)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="nexlab-bench-memory-") as scratch:
        work = Path(scratch)
        count = work / "paths"
        commands = {
            "audit": [NEXLAB, "audit", str(image), "--json"],
            "no-hash": [NEXLAB, "audit", str(image), "--json", "--no-hash"],
            "files": [NEXLAB, "audit", str(image), "--json-file", str(work / "a.json"), "--html", str(work / "a.html")],
            "records": [sys.executable, "-c", RECORDS, str(image), str(count)],
            "constant": [NEXLAB, "audit", "--list-rules"],
        }
        peaks: dict[str, list[int]] = {name: [] for name in commands}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():  # alternating, so a busy moment hits all alike
                seconds, peak = measure(argv)
                peaks[name].append(peak)
                times[name].append(seconds)
        paths = int(count.read_text())
        html_bytes = (work / "a.html").stat().st_size
    load_after = os.getloadavg()
    m = {name: max(values) for name, values in peaks.items()}
    constant = m["constant"]

    def per_file(name: str) -> float:
        return (m[name] - constant) / paths

    labels = {
        "audit": "`nexlab audit --json`",
        "no-hash": "`nexlab audit --json --no-hash`",
        "files": "`nexlab audit --json-file F --html H`",
        "records": "baseline: walk list + one FileRecord per path (no hash, no rules)",
        "constant": "`nexlab audit --list-rules` (the constant)",
    }
    lines = [
        f"image: scale_image({args.scale!r}), {image.stat().st_size / 1e9:.2f} GB, {paths:,} paths; "
        f"peak RssAnon, the largest of {args.runs} runs each, alternating; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (memory does not depend on it, seconds do)",
        "| | peak anon | per path above the constant | seconds (runs) |",
        "|---|---|---|---|",
    ]
    for name, label in labels.items():
        spread = ", ".join(f"{v:.1f}" for v in times[name])
        above = f"{per_file(name):,.0f} B" if name != "constant" else ""
        lines.append(f"| {label} | {m[name] / 1e6:.0f} MB | {above} | {spread} |")
    goal = GOAL * paths + constant
    lines += [
        "",
        f"- memory: `--json` peaks at {per_file('audit'):.0f} B/path + {constant / 1e6:.0f} MB "
        f"(goal ≤ {GOAL} B/path, {goal / 1e6:.0f} MB): {'met' if m['audit'] <= goal else 'NOT met'}; "
        f"the report files at {per_file('files'):.0f} B/path (HTML {html_bytes / 1e3:.0f} kB)",
        f"- against the record-per-path layout: `--json --no-hash` / baseline = "
        f"{(m['no-hash'] - constant) / max(m['records'] - constant, 1):.2f}× the memory above the constant, "
        f"while doing the whole audit",
    ]
    print("\n".join(lines))
    if args.record:
        record(f"nexlab audit memory at scale ({args.scale})", "\n".join(lines))


if __name__ == "__main__":
    main()
