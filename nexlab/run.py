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
import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from nexlab.errors import CommandError, ToolMissingError

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
    input: bytes | None = None,
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    uninterruptible: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion and return its captured output as text.

    ``uninterruptible`` runs it in a process group of its own, so a terminal's Ctrl-C
    (sent to the whole foreground group) reaches only nexlab: for steps such as
    ``losetup`` that must never die half-way, while nexlab holds the signal back.
    """
    argv = [str(arg) for arg in argv]
    executable = which(argv[0])
    log.debug("running: %s", shlex.join(argv))
    try:
        result = subprocess.run(
            [executable, *argv[1:]],
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
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, f"timed out after {timeout} s") from exc
    if check and result.returncode != 0:
        log.debug("%s exited %d: %s", argv[0], result.returncode, result.stderr.strip())
        raise CommandError(argv, result.returncode, result.stderr or result.stdout)
    return result


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
    argv = [str(arg) for arg in argv]
    executable = which(argv[0])
    log.debug("running (limit %s s): %s", timeout, shlex.join(argv))
    head: list[str] = []
    tail: collections.deque[str] = collections.deque(maxlen=max(keep_tail, 0))
    dropped = 0
    start = time.monotonic()
    proc = subprocess.Popen(
        [executable, *argv[1:]],
        env=base_environment(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so a kill reaches anything it started
    )
    assert proc.stdout is not None

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

    reader = threading.Thread(target=drain, args=(proc.stdout,), name="nexlab-run-bounded", daemon=True)
    reader.start()
    returncode: int | None
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        returncode = None
        log.debug("%s did not finish in %s s: killed", argv[0], timeout)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=5)
        proc.stdout.close()
    return Bounded(returncode, tuple(head), tuple(tail), dropped, time.monotonic() - start)


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

    The program runs in a process group of its own (a terminal's Ctrl-C reaches only
    nexlab) and is killed when the block ends before it did. Its stderr goes to a
    temporary file, so a chatty program cannot block on a full pipe nobody reads.
    """
    argv = [str(arg) for arg in argv]
    executable = which(argv[0])
    log.debug("streaming: %s", shlex.join(argv))
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [executable, *argv[1:]],
            env=base_environment(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            process_group=0,
        )
        assert proc.stdout is not None
        try:
            yield Streaming(argv, proc, errors)
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
