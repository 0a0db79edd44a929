"""What a boot check found: plain data; the presenter layer renders it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nexlab.boot.console import Outcome
from nexlab.display import Displayable


@dataclass(frozen=True)
class BootResult(Displayable):
    image: Path
    outcome: Outcome
    #: One line a person can act on: what happened, with the deciding console line.
    reason: str
    #: Seconds from starting the VM that booted (not a failed KVM attempt) to the agent's start.
    seconds_to_agent: float | None
    #: Seconds the whole check took, KVM probe included.
    seconds: float
    accel: str
    machine: str
    kernel: Path
    initrd: Path | None
    cmdline: str
    memory_mib: int
    console_log: Path | None
    last_lines: tuple[str, ...] = ()
    #: Why KVM was not used, when it was tried and given up.
    kvm_fallback: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    def summary(self) -> str:
        if self.ok and self.seconds_to_agent is not None:
            said = f"agent started in {self.seconds_to_agent:.1f} s"
        else:
            said = f"FAILED: {self.reason}" if not self.ok else self.reason
        return f"{self.image.name} ({self.accel}): {said}"
