"""The one way nexlab runs a program.

argv lists only (never a shell string), a fixed C locale and UTC so output
parses the same on every host, stdin from /dev/null, the command logged before
it runs, and a failure turned into a ``CommandError`` that carries the exit
status and the end of stderr. A missing program is a ``ToolMissingError`` that
names the Debian package to install.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import queue
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from nexlab.errors import CommandError, ToolMissingError
from nexlab.host import signals

log = logging.getLogger("nexlab.run")

#: Which Debian package provides each program nexlab runs.
DEBIAN_PACKAGES = {
    "mkfs.ext4": "e2fsprogs",
    "mke2fs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "dumpe2fs": "e2fsprogs",
    "tune2fs": "e2fsprogs",
    "losetup": "mount",
    "mount": "mount",
    "umount": "mount",
    "debootstrap": "debootstrap",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "diffoscope": "diffoscope",
    "chromium": "chromium",
}

_SBIN = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def base_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A small, fixed environment: the host's locale and time zone never leak in."""
    env = {
        "PATH": os.environ.get("PATH", _SBIN) + ":" + _SBIN,
        "LC_ALL": "C",
        "LANG": "C",
        "TZ": "UTC",
    }
    for passthrough in ("HOME", "TMPDIR", "DOCKER_HOST"):
        if passthrough in os.environ:
            env[passthrough] = os.environ[passthrough]
    if extra:
        env.update(extra)
    return env


def which(tool: str) -> str:
    """Path of ``tool`` or ``ToolMissingError``; sbin is searched even for normal users."""
    found = shutil.which(tool, path=os.environ.get("PATH", "") + ":" + _SBIN)
    if not found:
        raise ToolMissingError(tool, DEBIAN_PACKAGES.get(tool))
    return found


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    ok: Collection[int] = (0,),
    input: bytes | None = None,
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    uninterruptible: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion and return its captured output as text.

    An exit status outside ``ok`` raises ``CommandError`` (``check=False`` accepts
    every status, for the callers that read it themselves). ``on_line`` receives
    each line of stdout and stderr while the program runs, in the calling thread
    (a silent-looking debootstrap shows its progress); the output is still
    captured whole.

    ``uninterruptible`` runs it in a process group of its own, so a terminal's Ctrl-C
    (sent to the whole foreground group) reaches only nexlab: for steps such as
    ``losetup`` that must never die half-way, while nexlab holds the signal back.
    """
    argv = [str(arg) for arg in argv]
    executable = which(argv[0])
    log.debug("running: %s", shlex.join(argv))
    command = [executable, *argv[1:]]
    try:
        if on_line is None:
            result = subprocess.run(
                command,
                env=base_environment(env),
                stdin=subprocess.DEVNULL if input is None else None,
                input=input.decode() if input is not None else None,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                cwd=cwd,
                check=False,
                process_group=0 if uninterruptible else None,
                preexec_fn=signals.unblock_in_child(),
            )
        else:
            result = _run_streaming(command, argv, env, input, timeout, cwd, uninterruptible, on_line)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, timeout=timeout) from exc
    if check and result.returncode not in ok:
        log.debug("%s exited %d: %s", argv[0], result.returncode, result.stderr.strip())
        raise CommandError(argv, result.returncode, result.stderr or result.stdout)
    return result


def _run_streaming(
    command: list[str],
    argv: list[str],
    env: Mapping[str, str] | None,
    input: bytes | None,
    timeout: float | None,
    cwd: str | os.PathLike[str] | None,
    uninterruptible: bool,
    on_line: Callable[[str], None],
) -> subprocess.CompletedProcess[str]:
    """``run`` with each output line handed to ``on_line`` as it comes.

    Two reader threads (stdout, stderr) feed one queue; the calling thread alone
    calls ``on_line``, because a progress widget or a terminal line is not
    thread-safe. The deadline covers the whole run, like ``subprocess.run``'s.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    lines: queue.Queue[tuple[int, str] | None] = queue.Queue()
    captured: tuple[list[str], list[str]] = ([], [])
    proc = subprocess.Popen(
        command,
        env=base_environment(env),
        stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        process_group=0 if uninterruptible else None,
        preexec_fn=signals.unblock_in_child(),
    )

    def drain(which: int, stream: IO[bytes]) -> None:
        try:
            for raw in stream:
                lines.put((which, raw.decode("utf-8", "replace")))
        finally:
            lines.put(None)

    readers = [
        threading.Thread(target=drain, args=(n, stream), name="nexlab-run-stream", daemon=True)
        for n, stream in enumerate((proc.stdout, proc.stderr))
        if stream is not None
    ]
    for reader in readers:
        reader.start()
    try:
        if input is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(input)
            proc.stdin.close()
        open_streams = len(readers)
        while open_streams:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired(argv, timeout or 0)
            try:
                item = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if item is None:
                open_streams -= 1
                continue
            which_stream, line = item
            captured[which_stream].append(line)
            on_line(line.rstrip("\n"))
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
        returncode = proc.wait(timeout=remaining)
    finally:
        if proc.poll() is None:
            # A timeout or an exception in on_line (Ctrl-C): the program does not outlive the call.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        for reader in readers:
            reader.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return subprocess.CompletedProcess(argv, returncode, "".join(captured[0]), "".join(captured[1]))


@dataclass(frozen=True)
class Bounded:
    """What ``run_bounded`` kept of a program's merged stdout and stderr.

    ``returncode`` is None when the program did not finish within the time limit
    (it was killed). ``head`` and ``tail`` are the first and last lines; ``dropped``
    counts the lines in between that were read and thrown away.
    """

    returncode: int | None
    head: tuple[str, ...]
    tail: tuple[str, ...]
    dropped: int
    seconds: float

    @property
    def finished(self) -> bool:
        return self.returncode is not None

    @property
    def lines(self) -> tuple[str, ...]:
        return self.head + self.tail


def run_bounded(
    argv: Sequence[str],
    *,
    timeout: float,
    keep_head: int = 200,
    keep_tail: int = 200,
    env: Mapping[str, str] | None = None,
) -> Bounded:
    """Run ``argv`` with a time limit, keeping only the first and last lines of its output.

    For programs that can talk or run without end on hostile input (e2fsck on a
    corrupt image restarts forever, printing as it goes): memory stays bounded
    by the kept lines whatever the program prints, and at the deadline the
    program and its children are killed instead of being waited for.
    """
    head: list[str] = []
    tail: collections.deque[str] = collections.deque(maxlen=max(keep_tail, 0))
    dropped = 0
    start = time.monotonic()

    def drain(stream: IO[bytes]) -> None:
        nonlocal dropped
        # Lines are cut at 4 KiB so one endless line cannot grow without bound either.
        while chunk := stream.readline(4096):
            line = chunk.decode("utf-8", "replace").rstrip("\n")
            if len(head) < keep_head:
                head.append(line)
                continue
            if len(tail) == tail.maxlen:
                dropped += 1  # the oldest tail line (or this one, when no tail is kept) goes
            tail.append(line)

    log.debug("limit %s s for the next program", timeout)
    returncode: int | None
    # No grace: at the deadline the program and all it started are SIGKILLed, not asked.
    with spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, grace=0) as proc:
        assert proc.stdout is not None
        reader = threading.Thread(target=drain, args=(proc.stdout,), name="nexlab-run-bounded", daemon=True)
        reader.start()
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
            log.debug("%s did not finish in %s s: killed", argv[0], timeout)
    reader.join(timeout=5)
    proc.stdout.close()
    return Bounded(returncode, tuple(head), tuple(tail), dropped, time.monotonic() - start)


#: Seconds a spawned program gets between SIGTERM and SIGKILL.
KILL_GRACE_SECONDS = 3.0


@contextlib.contextmanager
def spawn(
    argv: Sequence[str],
    *,
    stdout: int | IO[bytes] | None = subprocess.PIPE,
    stderr: int | IO[bytes] | None = subprocess.DEVNULL,
    env: Mapping[str, str] | None = None,
    grace: float = KILL_GRACE_SECONDS,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a long-lived program (a VM) that never outlives the block, nor nexlab.

    It gets a session (so a process group) of its own: on leaving the block, by a
    return, an exception or Ctrl-C, the whole group gets SIGTERM, then SIGKILL
    after ``grace`` seconds, and is waited for. A parent-death signal kills it
    too when nexlab itself is SIGKILLed and no clean-up runs at all.
    """
    argv = [str(arg) for arg in argv]
    executable = which(argv[0])
    log.debug("spawning: %s", shlex.join(argv))
    process: subprocess.Popen[bytes] | None = None
    try:
        # A preexec_fn makes CPython run the at-fork hooks (logging's lock release among
        # them), and a KeyboardInterrupt raised inside one is printed and dropped: a Ctrl-C
        # in that instant was lost and the build went on. Held back over the fork, the
        # signal arrives when the block ends, where this try can stop the program; the
        # child unblocks it for itself before exec.
        with signals.deferred():
            process = subprocess.Popen(
                [executable, *argv[1:]],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=base_environment(env),
                start_new_session=True,
                preexec_fn=functools.partial(_die_with_parent, os.getpid(), _prctl()),
            )
        yield process
    finally:
        if process is not None:
            terminate(process, grace=grace)


def terminate(process: subprocess.Popen[bytes], *, grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM the process group of ``process``, SIGKILL it after ``grace`` s, and reap it."""
    signals = ((signal.SIGTERM, grace), (signal.SIGKILL, None)) if grace > 0 else ((signal.SIGKILL, None),)
    for sig, wait in signals:
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int]:
    """libc's prctl, looked up in the parent: the child of a fork must not import anything."""
    import ctypes

    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


def _die_with_parent(parent: int, prctl: Callable[..., int]) -> None:
    """In the child, before exec: SIGKILL when nexlab dies, even by SIGKILL (no clean-up runs then).

    Nothing here imports: forked while another thread of nexlab was importing a module (the
    build from the cache starts e2fsck from a thread while the main thread imports the rules),
    the child inherits that module's import lock held by a thread it does not have, and an
    ``import`` of that module would wait for ever (it did, for ``import ctypes``).
    """
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # held back by spawn()
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died between fork and prctl: then nobody would ever kill us.
    if os.getppid() != parent:
        os._exit(1)


class Streaming:
    """A running program's stdout as a file descriptor, for a reader in C (libarchive) to
    read without the bytes passing through Python. ``finish()`` says whether the whole
    output came: a program that failed half-way may still have written well-formed data."""

    def __init__(self, argv: Sequence[str], proc: subprocess.Popen[bytes], errors: IO[bytes]) -> None:
        assert proc.stdout is not None
        self.argv = list(argv)
        self.fd = proc.stdout.fileno()
        self._proc = proc
        self._errors = errors

    def finish(self) -> None:
        """Wait for the program; ``CommandError`` (with the end of its stderr) when it failed."""
        code = self._proc.wait()
        if code != 0:
            self._errors.seek(0)
            message = self._errors.read()[-4000:].decode("utf-8", "replace")
            log.debug("%s exited %d: %s", self.argv[0], code, message.strip())
            raise CommandError(self.argv, code, message)


@contextlib.contextmanager
def stream(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Iterator[Streaming]:
    """Start ``argv`` with its stdout on a pipe; the block reads ``Streaming.fd``.

    It runs through ``spawn()``: a process group of its own (a terminal's Ctrl-C reaches
    only nexlab), SIGKILLed when the block ends before it did, and when nexlab dies. Its stderr goes to a
    temporary file, so a chatty program cannot block on a full pipe nobody reads.
    """
    argv = [str(arg) for arg in argv]
    log.debug("streaming: %s", shlex.join(argv))
    with (
        tempfile.TemporaryFile() as errors,
        spawn(argv, stdout=subprocess.PIPE, stderr=errors, env=env, grace=0) as proc,
    ):
        assert proc.stdout is not None
        try:
            yield Streaming(argv, proc, errors)
        finally:
            proc.stdout.close()
