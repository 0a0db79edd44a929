"""The console watcher on OpenRC's and the kernel's own wording (escapes included).

These check the parsing alone; test_boot.py checks the same verdicts on real boots.
"""

from __future__ import annotations

from nexlab.boot.console import ConsoleWatcher, Outcome, clean

ESC = "\x1b"
STARTING = f" {ESC}[1m{ESC}[32m*{ESC}[m Starting agent{ESC}[K ...\r\n"
OK = f"{ESC}[A{ESC}[73C {ESC}[1m{ESC}[34m[{ESC}[1m{ESC}[32m ok {ESC}[1m{ESC}[34m]{ESC}[m\r\n"


def feed_all(watcher: ConsoleWatcher, lines: list[str], step: float = 0.1) -> tuple[Outcome | None, float]:
    now = 0.0
    for line in lines:
        now += step
        verdict = watcher.feed(line, now)
        if verdict is not None:
            return verdict.outcome, now
    return None, now


def test_clean_strips_escapes_and_carriage_returns() -> None:
    assert clean(STARTING) == " * Starting agent ..."
    assert clean(OK).strip() == "[ ok ]"


def test_ok_is_final_only_when_openrc_moves_on() -> None:
    watcher = ConsoleWatcher()
    outcome, _ = feed_all(watcher, [STARTING, OK])
    assert outcome is None  # start_post may still report a crash
    outcome, _ = feed_all(watcher, ["\r\n", "INIT: Entering runlevel: 2\r\n"])
    assert outcome is Outcome.AGENT_STARTED
    assert watcher.started_at is not None and watcher.started_at < 0.3


def test_ok_followed_by_an_error_is_a_crash() -> None:
    watcher = ConsoleWatcher()
    lines = [STARTING, OK, " * /usr/local/bin/agent exited during start-up\r\n", " * ERROR: agent failed to start\r\n"]
    outcome, _ = feed_all(watcher, lines)
    assert outcome is Outcome.SERVICE_CRASHED


def test_ok_settles_after_a_quiet_while() -> None:
    watcher = ConsoleWatcher(settle=2.0)
    feed_all(watcher, [STARTING, OK])
    assert watcher.poll(1.0) is None
    verdict = watcher.poll(5.0)
    assert verdict is not None and verdict.outcome is Outcome.AGENT_STARTED


def test_kernel_and_initramfs_failures() -> None:
    cases = {
        "[    3.1] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)": Outcome.NO_ROOT,
        "[    3.1] Kernel panic - not syncing: No working init found.  Try passing init= option": Outcome.NO_INIT,
        "[    3.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100": Outcome.KERNEL_PANIC,
        "Target filesystem doesn't have requested /sbin/init.": Outcome.NO_INIT,
        "ALERT!  /dev/vda does not exist.  Dropping to a shell!": Outcome.NO_ROOT,
    }
    for line, expected in cases.items():
        outcome, _ = feed_all(ConsoleWatcher(), [line + "\r\n"])
        assert outcome is expected, line


def test_expect_replaces_the_openrc_rule() -> None:
    watcher = ConsoleWatcher(expect=r"nexlab sample agent started as nex")
    outcome, _ = feed_all(watcher, [STARTING, OK, "INIT: Entering runlevel: 2\r\n"])
    assert outcome is None
    outcome, _ = feed_all(watcher, ["nexlab sample agent started as nex (pid 1200)\r\n"])
    assert outcome is Outcome.AGENT_STARTED
