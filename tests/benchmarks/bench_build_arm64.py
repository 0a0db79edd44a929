"""``nexlab build --arch arm64`` next to the same amd64 build on this x86 host, both paths,
200 MiB, measured in the same run, alternating, median of N. The arm64 setup script runs
emulated (qemu-user-static through binfmt_misc); the rest (mkfs, extraction, e2fsck,
hashing) is native, so the ratio says what emulation costs a build, not a CPU.

    python -m tests.benchmarks.bench_build_arm64 [--runs 3] [--record]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from tests.benchmarks.record import ASSETS, IMAGE, NEXLAB, record, timed

ARM64_IMAGE = "nexlab/debian:bookworm-arm64"


def main() -> None:
    from nexlab.builder import base

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="write the result into reports/benchmarks.md")
    args = parser.parse_args()
    base.debian(ARM64_IMAGE, base.DebianSpec(arch="arm64"))
    agent = ASSETS / "sample-agent.sh"
    rows = []
    with tempfile.TemporaryDirectory(prefix="nexlab-bench-") as scratch:
        for path, flags in (("mount", []), ("--reproducible --no-cache", ["--reproducible", "--no-cache"])):
            commands = {
                arch: [
                    NEXLAB,
                    "build",
                    "-q",
                    "--agent",
                    str(agent),
                    "--image",
                    image,
                    "--arch",
                    arch,
                    "--size",
                    "200MiB",
                    *flags,
                    "-o",
                    str(Path(scratch, f"{arch}.ext4")),
                ]
                for arch, image in (("amd64", IMAGE), ("arm64", ARM64_IMAGE))
            }
            for argv in commands.values():
                timed(argv)  # warm the page cache and the engine's layers
            times: dict[str, list[float]] = {arch: [] for arch in commands}
            for _ in range(args.runs):
                for arch, argv in commands.items():
                    times[arch].append(timed(argv))
            amd64, arm64 = (statistics.median(times[a]) for a in ("amd64", "arm64"))
            for arch, median in (("amd64", amd64), ("arm64", arm64)):
                runs = ", ".join(f"{t:.2f}" for t in times[arch])
                rows.append(f"| {path} | {arch} | {median:.2f} | {runs} |")
            rows.append(f"| {path} | **arm64 / amd64** | **{arm64 / amd64:.2f}×** | |")
    lines = ["| path | arch | median (s) | runs (s) |", "|---|---|---|---|", *rows]
    print("\n".join(lines))
    if args.record:
        record("nexlab build for arm64 next to amd64 (emulated setup)", "\n".join(lines))


if __name__ == "__main__":
    main()
