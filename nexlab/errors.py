"""Typed errors.

Every failure a user can cause or fix is a ``NexlabError``: the library raises it
with a message that says what is wrong and, where we know, what to do; the CLI
prints it as one line and exits non-zero. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import shlex
import signal


class NexlabError(Exception):
    """Base class of the errors nexlab expects and explains."""

    #: Exit status the CLI uses for this kind of error.
    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class InputError(NexlabError):
    """A file or argument the user passed is missing or unusable."""


class ToolMissingError(NexlabError):
    """A program nexlab runs is not installed."""

    def __init__(self, tool: str, package: str | None = None) -> None:
        hint = f"install it with: apt-get install {package}" if package else None
        super().__init__(f"{tool} not found", hint=hint)
        self.tool = tool
        self.package = package


class CommandError(NexlabError):
    """A program nexlab ran exited non-zero."""

    def __init__(self, argv: list[str], returncode: int, stderr: str = "", *, timeout: float | None = None) -> None:
        tail = " ".join(stderr.strip().splitlines()[-3:]) if stderr else ""
        if timeout is not None:
            # Killed by nexlab at the deadline: -1 is no status of the program's own.
            message = f"{_command_line(argv)} timed out after {timeout:g} s and was killed"
        else:
            message = f"{_command_line(argv)} failed with {describe_status(returncode)}"
        if tail:
            message += f": {tail}"
        super().__init__(message)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        #: The limit the program was killed at, or None when it ended by itself.
        self.timeout = timeout


def describe_status(returncode: int) -> str:
    """``exit status 3``, or ``killed by SIGKILL`` for a program a signal ended (negative status)."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


#: Characters of the command line a message shows: a debugfs or mkfs line can be long.
_COMMAND_CHARS = 300


def _command_line(argv: list[str]) -> str:
    line = shlex.join(argv)
    return line if len(line) <= _COMMAND_CHARS else line[: _COMMAND_CHARS - 1] + "…"


class PrivilegeError(NexlabError):
    """The operation needs root (loop devices, mount)."""


class HostError(NexlabError):
    """The host failed the build: its disk is full, a file system is read-only, a device is missing."""


class DockerError(NexlabError):
    """The Docker engine is unreachable or refused a request."""


class DockerUnavailableError(DockerError):
    """No Docker daemon answers."""


class BaseImageError(DockerError):
    """The base image is missing locally and cannot be pulled."""


class ContainerFailedError(DockerError):
    """The populate container exited non-zero."""

    def __init__(self, message: str, *, exit_code: int, log_tail: list[str]) -> None:
        super().__init__(message)
        self.container_exit_code = exit_code
        self.log_tail = log_tail


class ImageTooSmallError(NexlabError):
    """The content does not fit the requested filesystem size."""

    def __init__(self, message: str, *, needed_bytes: int | None = None) -> None:
        super().__init__(message)
        self.needed_bytes = needed_bytes


class ImageFormatError(NexlabError):
    """A file is not an ext2/3/4 image, or is corrupt beyond reading."""


class ArchitectureError(NexlabError):
    """An image or binary is for another CPU architecture."""


class BootError(NexlabError):
    """A boot check could not start, or the guest did not reach the agent."""

    exit_code = 1

    def __init__(self, message: str, *, reason: str = "", console_tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.console_tail = console_tail or []


class AgentServiceError(NexlabError):
    """The built image's agent service cannot run (wrong init, missing interpreter, not enabled)."""


class ResizeError(NexlabError):
    """``nexlab resize`` cannot resize this image (unclean, not an image, or the size asked)."""


class ShrinkBelowContentError(ResizeError):
    """A shrink below what the image's content needs; ``minimum_bytes`` is the least it can take."""

    def __init__(self, message: str, *, minimum_bytes: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.minimum_bytes = minimum_bytes


class SbomError(NexlabError):
    """An SBOM could not be made: unknown format, an unwritable file, or a document that does not validate."""
