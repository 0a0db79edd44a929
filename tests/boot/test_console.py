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


# Recorded from real boots (nexlab boot --log) of the systemd and busybox images.
SYSTEMD_OK = [
    "Welcome to Debian GNU/Linux 12 (bookworm)!\r\n",
    f"         Starting {ESC}[0;1;39magent.service{ESC}[0m - Nex agent...\r\n",
    f"[{ESC}[0;32m  OK  {ESC}[0m] Started {ESC}[0;1;39magent.service{ESC}[0m - Nex agent.\r\n",
    f"[{ESC}[0;32m  OK  {ESC}[0m] Reached target {ESC}[0;1;39mmulti-user.target{ESC}[0m - Multi-User System.\r\n",
]
SYSTEMD_NO_AGENT = [
    "Welcome to Debian GNU/Linux 12 (bookworm)!\r\n",
    f"[{ESC}[0;32m  OK  {ESC}[0m] Reached target {ESC}[0;1;39mmulti-user.target{ESC}[0m - Multi-User System.\r\n",
    f"[{ESC}[0;32m  OK  {ESC}[0m] Reached target {ESC}[0;1;39mgraphical.target{ESC}[0m - Graphical Interface.\r\n",
]
SYSTEMD_CRASH = [
    f"         Starting {ESC}[0;1;39magent.service{ESC}[0m - Nex agent...\r\n",
    f"[{ESC}[0;1;31mFAILED{ESC}[0m] Failed to start {ESC}[0;1;39magent.service{ESC}[0m - Nex agent.\r\n",
    "See 'systemctl status agent.service' for details.\r\n",
]
BUSYBOX_OK = [
    "nexlab-agent: Starting agent\r\n",
    "Welcome to Alpine Linux 3.20\r\n",
    "nex login: ",
    "nexlab-agent: agent started (pid 187)\r\n",
]
BUSYBOX_CRASH = ["nexlab-agent: Starting agent\r\n", "nex login: nexlab-agent: ERROR: agent exited during start-up\r\n"]
BUSYBOX_NO_AGENT = ["Welcome to Alpine Linux 3.20\r\n", "Kernel 6.1.0-57-cloud-amd64 on an x86_64 (/dev/ttyS0)\r\n"]


def test_systemd_start_is_seen_and_settles_on_the_next_target() -> None:
    watcher = ConsoleWatcher()
    outcome, _ = feed_all(watcher, SYSTEMD_OK)
    assert outcome == Outcome.AGENT_STARTED
    assert watcher.verdict is not None and "Started agent.service" in watcher.verdict.line


def test_systemd_booted_without_the_agent_fails_after_the_grace() -> None:
    watcher = ConsoleWatcher(grace=5.0)
    outcome, now = feed_all(watcher, SYSTEMD_NO_AGENT)
    assert outcome is None, "not at once: the agent may still start right after"
    assert watcher.poll(now + 1.0) is None
    verdict = watcher.poll(now + 5.5)
    assert verdict is not None and verdict.outcome == Outcome.NO_AGENT
    assert "Multi-User System" in verdict.line


def test_systemd_failed_start_is_a_crash() -> None:
    outcome, _ = feed_all(ConsoleWatcher(), SYSTEMD_CRASH)
    assert outcome == Outcome.SERVICE_CRASHED


def test_busybox_wrapper_start_after_the_login_prompt_is_a_start() -> None:
    watcher = ConsoleWatcher(grace=5.0)
    outcome, now = feed_all(watcher, BUSYBOX_OK)
    assert outcome is None
    verdict = watcher.poll(now + 10.0)
    assert verdict is not None and verdict.outcome == Outcome.AGENT_STARTED, "the start wins over the prompt"


def test_busybox_crash_and_no_agent() -> None:
    assert feed_all(ConsoleWatcher(), BUSYBOX_CRASH)[0] == Outcome.SERVICE_CRASHED
    watcher = ConsoleWatcher(grace=5.0)
    _, now = feed_all(watcher, [*BUSYBOX_NO_AGENT, "nex login: "])
    verdict = watcher.poll(now + 5.5)
    assert verdict is not None and verdict.outcome == Outcome.NO_AGENT and "login:" in verdict.line


def test_openrc_login_without_any_agent_start_fails_too() -> None:
    watcher = ConsoleWatcher(grace=2.0)
    _, now = feed_all(watcher, ["INIT: Entering runlevel: 2\r\n", " * Starting sshd ... [ ok ]\r\n", "nex login: "])
    verdict = watcher.poll(now + 2.5)
    assert verdict is not None and verdict.outcome == Outcome.NO_AGENT
