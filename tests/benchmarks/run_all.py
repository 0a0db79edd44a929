"""Run every benchmark once, in turn, and record each in reports/benchmarks.md.

    python -m tests.benchmarks.run_all [--runs N]

Benchmarks are not tests: nothing here passes or fails on a time. Run them on a
quiet machine: they share two cores with anything else that runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = (
    "bench_build",
    "bench_build_reproducible",
    "bench_build_caches",
    "bench_build_cached",
    "bench_build_arm64",
    "bench_reader",
    "bench_audit",
    "bench_audit_scale",
    "bench_audit_memory",
    "bench_diff",
    "bench_fuzz",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run only these")
    args = parser.parse_args()
    for name in args.only or BENCHMARKS:
        print(f"\n### {name}", flush=True)
        module = importlib.import_module(f"tests.benchmarks.{name}")
        sys.argv = [name, "--runs", str(args.runs), "--record"]
        module.main()


if __name__ == "__main__":
    main()
