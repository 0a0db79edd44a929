"""What the benchmarks share: where things are, timing a whole command, and
writing results into reports/benchmarks.md (each benchmark replaces its own section)."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS_MD = REPO / "reports" / "benchmarks.md"
ASSETS = REPO / "nexlab" / "builder" / "assets"
#: The seed's manual recipe, the baseline of the build benchmarks.
RECIPE = Path(__file__).with_name("manual_recipe.sh")
IMAGE = os.environ.get("NEXLAB_DEBIAN_TAG", "nexlab/debian:bookworm")
NEXLAB = str(Path(sys.executable).with_name("nexlab"))
HEADER = "# Benchmarks\n\nMeasured by `tests/benchmarks/` (`make bench`); each section is rewritten by its benchmark.\n"


def machine() -> str:
    cores = len(Path("/proc/cpuinfo").read_text().split("processor\t:")) - 1
    return f"{platform.machine()}, {cores} cores, kernel {platform.release()}"


def record(section: str, body: str) -> None:
    """Replace (or add) the ``## section`` of reports/benchmarks.md with ``body``."""
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"## {section}\n\n_{stamp}, {machine()}_\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: block + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS_MD.write_text(text.rstrip("\n") + "\n")


def timed(argv: list[str], *, ok: tuple[int, ...] = (0,)) -> float:
    """Wall-clock seconds of a whole command (start-up included, as a user waits for it)."""
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if result.returncode not in ok:
        raise SystemExit(f"{argv[0]} exited {result.returncode}")
    return time.perf_counter() - start


def installed_bytecode() -> str:
    """Byte-compile nexlab's modules as ``pip install`` does, so each timed ``nexlab`` starts as an
    installed copy does; returns a note for the record.

    A session with ``PYTHONDONTWRITEBYTECODE=1`` (these helpers' machines set it) never writes
    ``__pycache__``: every timed run then compiled ~70 modules from source, ~0.1 s that no
    installed nexlab pays (measured: ``nexlab build --help`` 0.38-0.51 s → 0.11-0.47 s, load 6.4).
    """
    import compileall

    compileall.compile_dir(REPO / "nexlab", quiet=1)
    unset = "" if os.environ.get("PYTHONDONTWRITEBYTECODE") else " (PYTHONDONTWRITEBYTECODE unset: no change)"
    return f"nexlab's modules byte-compiled first, as an install has them{unset}"


def load_average() -> str:
    """The 1-minute load average now: the benchmarks' numbers are read against it."""
    return f"{os.getloadavg()[0]:.1f}"
