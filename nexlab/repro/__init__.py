"""``repro``: build several times with varied surroundings and explain any difference."""

from nexlab.repro.model import ReproResult, RunResult, Variation
from nexlab.repro.runner import repro

__all__ = ["ReproResult", "RunResult", "Variation", "repro"]
