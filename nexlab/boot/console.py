"""Reading the guest's serial console: what the lines say about the boot.

``ConsoleWatcher`` is fed one line at a time and answers with a ``Verdict``
once a line decides the boot: the agent service started (success), or a
kernel panic, a missing init, an unmountable root or a crashed service
(failure). It knows nothing about QEMU, so it can be checked against a
recorded console log.

OpenRC's start line comes in two pieces: `` * Starting agent ...`` and, on a
later line (after a cursor-up escape), ``[ ok ]`` or ``[ !! ]``. Even ``[ ok ]``
is not the end: it only says supervise-daemon forked, and the service's
``start_post`` check can still report ``ERROR: agent failed to start`` a second
later. So a start is final once OpenRC has moved on (the next service, the
runlevel change, a login prompt) or ``settle`` seconds passed without an error;
its time is that of the ``[ ok ]`` line.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

# Terminal escapes (colours, cursor moves, "clear line") that OpenRC and the
# BIOS write around their text.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[@-Z\\-_]|c)")
_KERNEL_STARTED = re.compile(r"Linux version \d")
_OPENRC_OK = re.compile(r"\[\s*ok\s*\]")
_OPENRC_FAILED = re.compile(r"\[\s*!!\s*\]")


class Outcome(enum.StrEnum):
    AGENT_STARTED = "agent started"
    KERNEL_PANIC = "kernel panic"
    NO_INIT = "no init"
    NO_ROOT = "root filesystem not mounted"
    SERVICE_CRASHED = "agent service crashed"
    VM_STOPPED = "VM stopped"
    TIMEOUT = "timeout"

    @property
    def ok(self) -> bool:
        return self is Outcome.AGENT_STARTED


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    line: str


def clean(line: str) -> str:
    """A console line without escapes and carriage returns, as a person would read it."""
    return _ESCAPE.sub("", line).replace("\r", "").rstrip()


def _failure_patterns(service: str) -> list[tuple[re.Pattern[str], Outcome]]:
    name = re.escape(service)
    return [
        # initramfs-tools, before the kernel would notice
        (re.compile(r"Target filesystem doesn't have requested|No init found"), Outcome.NO_INIT),
        (re.compile(r"ALERT!.*does not exist|Gave up waiting for root|Failed to mount .* as root"), Outcome.NO_ROOT),
        # the kernel without an initrd
        (re.compile(r"Kernel panic - not syncing: No working init found"), Outcome.NO_INIT),
        (re.compile(r"Kernel panic - not syncing: VFS: Unable to mount root"), Outcome.NO_ROOT),
        (re.compile(r"Kernel panic - not syncing"), Outcome.KERNEL_PANIC),
        # OpenRC (and our service's start-up check), supervise-daemon if it reaches the console
        (re.compile(rf"ERROR: {name} failed to start|ERROR: {name} .*(?:crashed|exited)"), Outcome.SERVICE_CRASHED),
        (re.compile(rf"respawned \"?{name}\"? too many times"), Outcome.SERVICE_CRASHED),
    ]


_MOVED_ON = re.compile(r"INIT: Entering runlevel|login: ?$|^\s*\*\s+(?:Starting|Mounting|Setting|Checking) ")


@dataclass(frozen=True)
class _Started:
    line: str
    at: float


class ConsoleWatcher:
    """Decides a boot from its console lines.

    ``feed(line, now)`` returns a verdict at most once; ``poll(now)`` returns
    one when a started service has settled with no console line to carry it.
    """

    def __init__(self, *, expect: str | None = None, service: str = "agent", settle: float = 10.0) -> None:
        self._expect = re.compile(expect) if expect is not None else None
        self._service = service
        self._starting = re.compile(rf"\*\s+Starting (?:{re.escape(service)}|Nex agent)\b")
        self._failures = _failure_patterns(service)
        self._settle = settle
        self._pending_start: str | None = None
        self._started: _Started | None = None
        self.kernel_started = False
        self.verdict: Verdict | None = None
        #: Monotonic time of the line that showed the agent started (``[ ok ]`` or ``--expect``).
        self.started_at: float | None = None

    def feed(self, raw: str, now: float) -> Verdict | None:
        if self.verdict is not None:
            return None
        line = clean(raw)
        if not self.kernel_started and _KERNEL_STARTED.search(line):
            self.kernel_started = True
        self.verdict = self._decide(line, now) or self.poll(now)
        return self.verdict

    def poll(self, now: float) -> Verdict | None:
        if self.verdict is None and self._started is not None and now - self._started.at >= self._settle:
            self.verdict = Verdict(Outcome.AGENT_STARTED, self._started.line)
        return self.verdict

    def _decide(self, line: str, now: float) -> Verdict | None:
        for pattern, outcome in self._failures:
            if pattern.search(line):
                return Verdict(outcome, line)
        if self._started is not None:
            if _MOVED_ON.search(line) and not self._starting.search(line):
                return Verdict(Outcome.AGENT_STARTED, self._started.line)
            return None
        if self._expect is not None:
            if self._expect.search(line):
                self.started_at = now
                return Verdict(Outcome.AGENT_STARTED, line)
            return None
        if self._starting.search(line):
            # "[ ok ]" may already be on this line (a console that wraps nothing)
            if _OPENRC_OK.search(line):
                self._start(line, now)
            else:
                self._pending_start = line
            return None
        if self._pending_start is not None:
            if _OPENRC_OK.search(line):
                self._start(f"{self._pending_start} {line.strip()}", now)
            elif _OPENRC_FAILED.search(line):
                return Verdict(Outcome.SERVICE_CRASHED, f"{self._pending_start} {line.strip()}")
        return None

    def _start(self, line: str, now: float) -> None:
        self._pending_start = None
        self._started = _Started(line, now)
        self.started_at = now
