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

The same holds for the other inits nexlab installs the agent for: systemd's
``Started agent.service`` (printed after the unit's own start-up check) and the
busybox/sysvinit wrapper's ``nexlab-agent: agent started``. And every init says
when it has finished booting: systemd ``Reached target ... Multi-User`` or
``Startup finished``, a ``login:`` prompt for any of them. Once that is seen
without any start of the agent (and ``grace`` seconds confirm it, since a getty
and the agent start side by side under busybox init), the boot has failed: it
will not get better by waiting for the timeout.
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
    NO_AGENT = "booted without starting the agent"
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
        # systemd (the unit's ExecStartPost check fails the start of an agent that dies)
        (re.compile(rf"Failed to start (?:{name}\.service|Nex agent)\b"), Outcome.SERVICE_CRASHED),
        (
            re.compile(rf"{name}\.service: (?:Failed with result|Start request repeated too quickly)"),
            Outcome.SERVICE_CRASHED,
        ),
        # nexlab's inittab wrapper (busybox init, sysvinit) and sysvinit's own limit
        (re.compile(rf"nexlab-{name}: ERROR: "), Outcome.SERVICE_CRASHED),
        (re.compile(r'INIT: Id "ag" respawning too fast'), Outcome.SERVICE_CRASHED),
    ]


_MOVED_ON = re.compile(
    r"INIT: Entering runlevel|login: ?$|^\s*\*\s+(?:Starting|Mounting|Setting|Checking) "
    r"|Reached target|Startup finished|\[\s*OK\s*\] (?:Started|Finished|Reached)"
)
#: The init has finished booting: whatever it was going to start has been started.
_BOOTED = re.compile(
    r"login: ?$|Reached target (?:multi-user\.target|Multi-User System|graphical\.target|Graphical Interface)"
    r"|Startup finished in "
)


@dataclass(frozen=True)
class _Started:
    line: str
    at: float


class ConsoleWatcher:
    """Decides a boot from its console lines.

    ``feed(line, now)`` returns a verdict at most once; ``poll(now)`` returns
    one when a started service has settled with no console line to carry it.
    """

    def __init__(
        self, *, expect: str | None = None, service: str = "agent", settle: float = 10.0, grace: float = 5.0
    ) -> None:
        self._expect = re.compile(expect) if expect is not None else None
        name = re.escape(service)
        self._starting = re.compile(rf"\*\s+Starting (?:{name}|Nex agent)\b")
        # A start that is already checked: systemd's and nexlab's inittab wrapper's.
        self._started_line = re.compile(rf"Started (?:{name}\.service|Nex agent)\b|nexlab-{name}: {name} started\b")
        self._grace = grace
        self._booted: _Started | None = None
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
        if (
            self.verdict is None
            and self._started is None
            and self._booted is not None
            and now - self._booted.at >= self._grace
        ):
            self.verdict = Verdict(Outcome.NO_AGENT, self._booted.line)
        return self.verdict

    def _decide(self, line: str, now: float) -> Verdict | None:
        for pattern, outcome in self._failures:
            if pattern.search(line):
                return Verdict(outcome, line)
        if self._started is not None:
            if _MOVED_ON.search(line) and not self._starting.search(line):
                return Verdict(Outcome.AGENT_STARTED, self._started.line)
            return None
        if self._booted is None and _BOOTED.search(line):
            self._booted = _Started(line, now)
        if self._expect is not None:
            if self._expect.search(line):
                self.started_at = now
                return Verdict(Outcome.AGENT_STARTED, line)
            return None
        if self._started_line.search(line):
            self._start(line, now)
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
