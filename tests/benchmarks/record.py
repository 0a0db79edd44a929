"""Write a benchmark's results into reports/benchmarks.md, replacing its own section."""

from __future__ import annotations

import datetime
import platform
import re
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[2] / "reports" / "benchmarks.md"
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
