"""``run``, ``run_bounded`` and ``spawn``: accepted statuses, live lines, clear errors, nothing left running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nexlab.errors import CommandError, ToolMissingError
from nexlab.run import run, run_bounded, spawn


def test_keeps_the_first_and_last_lines_and_counts_the_rest() -> None:
    result = run_bounded(["seq", "1", "100000"], timeout=60, keep_head=3, keep_tail=2)
    assert result.returncode == 0 and result.finished
    assert result.head == ("1", "2", "3") and result.tail == ("99999", "100000")
    assert result.dropped == 100000 - 5
    nothing = run_bounded(["seq", "1", "10"], timeout=60, keep_head=0, keep_tail=0)
    assert nothing.lines == () and nothing.dropped == 10


def test_stderr_is_kept_with_stdout() -> None:
    result = run_bounded(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=60)
    assert result.returncode == 3 and sorted(result.lines) == ["err", "out"]


def test_a_program_past_its_time_is_killed_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = run_bounded(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; echo started; wait"], timeout=1)
    assert time.monotonic() - started < 30
    assert result.returncode is None and not result.finished and result.lines == ("started",)
    child = int(pidfile.read_text())
    # The background child was in the same process group: it is gone too (reaped by init).
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"child {child} still runs")


def test_endless_output_keeps_only_the_bounds() -> None:
    # What a looping e2fsck does: print without end. Memory holds only the kept lines.
    result = run_bounded(["yes", "Restarting e2fsck from the beginning..."], timeout=2, keep_head=10, keep_tail=5)
    assert not result.finished
    assert len(result.head) == 10 and len(result.tail) == 5
    assert result.dropped > 1000


# --- run(): accepted exit codes, streaming, the command and signal names in its errors ---


def test_accepted_exit_codes_return_and_others_raise() -> None:
    done = run(["sh", "-c", "exit 1"], ok=(0, 1))
    assert done.returncode == 1
    with pytest.raises(CommandError) as caught:
        run(["sh", "-c", "echo bad >&2; exit 4"], ok=(0, 1))
    assert caught.value.returncode == 4 and "exit status 4" in str(caught.value) and "bad" in str(caught.value)
    assert run(["sh", "-c", "exit 9"], check=False).returncode == 9


def test_the_error_names_the_whole_command_quoted() -> None:
    with pytest.raises(CommandError) as caught:
        run(["sh", "-c", "exit 3", "two words"])
    assert str(caught.value).startswith("sh -c 'exit 3' 'two words' failed with exit status 3")


def test_a_program_killed_by_a_signal_says_which() -> None:
    with pytest.raises(CommandError) as caught:
        run(["sh", "-c", "kill -KILL $$"])
    assert caught.value.returncode == -signal.SIGKILL
    assert "killed by SIGKILL" in str(caught.value)
    with pytest.raises(CommandError, match="killed by SIGTERM"):
        run(["sh", "-c", "kill -TERM $$"], on_line=lambda line: None)


#: A program that kills itself with SIGTERM (Python keeps the mask it was given; dash clears it).
_SELF_TERM = [sys.executable, "-c", "import os, signal, time; os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)"]


def _blocks_sigterm(status: str) -> bool:
    """Whether ``grep SigBlk /proc/self/status`` (run directly: no shell) shows SIGTERM blocked."""
    return bool(int(status.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


def test_a_program_started_from_a_thread_that_blocks_sigterm_still_gets_it() -> None:
    """build-many's workers and the background hashes block SIGINT and SIGTERM (so a Ctrl-C
    reaches the main thread); the programs they start must not inherit that mask."""
    from nexlab.host import signals

    outcomes: list[object] = []

    def masked() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        for on_line in (None, lambda line: None):
            outcomes.append(_blocks_sigterm(run(["grep", "SigBlk", "/proc/self/status"], on_line=on_line).stdout))
            try:
                run(_SELF_TERM, on_line=on_line, timeout=20)
                outcomes.append("not killed")
            except CommandError as exc:
                outcomes.append("killed by SIGTERM" if exc.returncode == -signal.SIGTERM else str(exc))
        with spawn(["grep", "SigBlk", "/proc/self/status"], stdout=subprocess.PIPE) as child:
            out, _ = child.communicate(timeout=10)
        outcomes.append(_blocks_sigterm(out.decode()))
        outcomes.append(signals.unblock_in_child() is not None)

    thread = threading.Thread(target=masked)
    thread.start()
    thread.join(timeout=60)
    assert outcomes == [False, "killed by SIGTERM", False, "killed by SIGTERM", False, True]


def test_deferred_still_hands_its_hold_to_the_programs_it_runs() -> None:
    """In the main thread, ``deferred()`` blocks on purpose: its programs must not die half-way."""
    from nexlab.host import signals

    with signals.deferred():
        assert signals.unblock_in_child() is None
        assert _blocks_sigterm(run(["grep", "SigBlk", "/proc/self/status"]).stdout)
    assert signals.unblock_in_child() is None  # nothing blocked: no preexec_fn, the fast path
    assert not _blocks_sigterm(run(["grep", "SigBlk", "/proc/self/status"]).stdout)


def test_a_timeout_says_so_and_is_no_signal() -> None:
    for on_line in (None, lambda line: None):
        with pytest.raises(CommandError, match=r"sleep 30 timed out after 0.5 s"):
            run(["sleep", "30"], timeout=0.5, on_line=on_line)


def test_streaming_hands_over_each_line_while_the_program_runs(tmp_path: Path) -> None:
    # The program waits, after each line, for a file that only the callback creates for that
    # line: it can finish only if every line, from stdout and stderr alike, reached the
    # callback while it ran. (Waiting also fixes the order: lines on two pipes have none.)
    seen: list[tuple[str, bool]] = []

    def on_line(line: str) -> None:
        seen.append((line, threading.current_thread() is threading.main_thread()))
        (tmp_path / line).touch()

    def wait(line: str) -> str:
        return f"while [ ! -e {tmp_path / line} ]; do sleep 0.05; done"

    script = f"echo first; {wait('first')}; echo second >&2; {wait('second')}; echo third"
    done = run(["sh", "-c", script], timeout=30, on_line=on_line)
    assert [line for line, _ in seen] == ["first", "second", "third"]
    assert all(in_main for _, in_main in seen)  # widgets and terminals are not thread-safe
    assert done.stdout == "first\nthird\n" and done.stderr == "second\n"


def test_streaming_keeps_input_env_and_accepted_codes() -> None:
    lines: list[str] = []
    done = run(
        ["sh", "-c", 'cat; echo "$LC_ALL $EXTRA"; exit 1'],
        input=b"from stdin\n",
        env={"EXTRA": "given"},
        ok=(0, 1),
        on_line=lines.append,
    )
    assert lines == ["from stdin", "C given"] and done.returncode == 1


def test_streaming_stops_the_program_when_the_callback_raises(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"

    def interrupt(line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(["sh", "-c", f"echo $$ > {pidfile}; echo go; exec sleep 300"], on_line=interrupt)
    _assert_gone(int(pidfile.read_text()))


# --- spawn(): a long-lived program that never outlives its block ---


def test_spawn_kills_the_whole_group_on_leaving(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    with spawn(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; echo up; wait"]) as process:
        assert process.stdout is not None and process.stdout.readline() == b"up\n"
        assert os.getpgid(process.pid) == process.pid  # a group of its own
    assert process.returncode == -signal.SIGTERM
    _assert_gone(int(pidfile.read_text()))


def test_spawn_kills_on_an_exception_and_escalates_to_sigkill(tmp_path: Path) -> None:
    started = time.monotonic()
    with (
        pytest.raises(RuntimeError),
        spawn(["sh", "-c", "trap '' TERM; echo up; while :; do sleep 1; done"]) as stubborn,
    ):
        assert stubborn.stdout is not None and stubborn.stdout.readline() == b"up\n"
        raise RuntimeError("the caller failed")
    assert stubborn.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 30


def test_spawned_program_dies_with_its_parent(tmp_path: Path) -> None:
    # The parent is SIGKILLed, so no clean-up of its own runs: only the parent-death signal can end the child.
    pidfile = tmp_path / "vm.pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import pathlib, sys, time\n"
            "from nexlab.run import spawn\n"
            "with spawn(['sleep', '300']) as p:\n"
            f"    pathlib.Path({str(pidfile)!r}).write_text(str(p.pid))\n"
            "    time.sleep(300)\n",
        ]
    )
    try:
        for _ in range(200):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.05)
        child = int(pidfile.read_text())
        parent.kill()
        parent.wait()
        _assert_gone(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


#: A process whose main thread is half-way through importing ctypes (its import lock held) while
#: another thread spawns a program: the fork's child must not import anything before exec.
_IMPORTING_WHILE_SPAWNING = """
import importlib.abc, importlib.machinery, sys, threading, time
from nexlab.run import run_bounded

class SlowCtypes(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "ctypes":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        execute = spec.loader.exec_module
        def slowly(module):
            time.sleep(1.5)  # the spawning thread forks meanwhile
            execute(module)
        spec.loader.exec_module = slowly
        return spec

assert "ctypes" not in sys.modules
sys.meta_path.insert(0, SlowCtypes())
done = []
spawner = threading.Thread(target=lambda: (time.sleep(0.3), done.append(run_bounded(["true"], timeout=30).returncode)))
spawner.start()
import ctypes
spawner.join()
print(done)
"""


def test_a_program_spawned_while_another_thread_imports_starts() -> None:
    # With an import in the child's preexec_fn, the child waited for ever on ctypes' import lock.
    process = subprocess.Popen(
        [sys.executable, "-c", _IMPORTING_WHILE_SPAWNING],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so that a child stuck before exec goes with it
    )
    try:
        out, err = process.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert (process.returncode, out.strip()) == (0, "[0]"), err


def test_spawn_of_a_missing_program_names_the_package() -> None:
    with pytest.raises(ToolMissingError), spawn(["nexlab-no-such-program"]):
        raise AssertionError("must not start")


def _assert_gone(pid: int) -> None:
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still runs")
