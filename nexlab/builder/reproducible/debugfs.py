"""One scripted ``debugfs -w`` session: commands gathered, run at once, its complaints raised.

One session rather than many, because each session adds its own writes to the
superblock's lifetime-writes counter: a build that took more sessions would
differ in those bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from nexlab import tempdirs
from nexlab.errors import CommandError
from nexlab.run import run


class Session:
    """Commands for one image; ``scratch`` holds the files they read (xattr values)."""

    def __init__(self, image: Path, scratch: Path) -> None:
        self.image = image
        self.scratch = scratch
        self.commands: list[str] = []

    def add(self, *commands: str) -> None:
        self.commands.extend(commands)

    def run(self, *, env: Mapping[str, str] | None = None) -> None:
        """Run every command added, in one session; ``CommandError`` if debugfs complained."""
        script = self.scratch / "cmds"
        script.write_text("\n".join(self.commands) + "\n", encoding="utf-8")
        result = run(["debugfs", "-w", "-f", str(script), str(self.image)], env=env)
        # debugfs exits 0 even when a command fails; its complaints are the stderr lines
        # other than the version banner.
        problems = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("debugfs ")]
        if problems:
            raise CommandError(["debugfs", "-w", "-f", "cmds", str(self.image)], 1, "\n".join(problems))


@contextlib.contextmanager
def session(image: Path) -> Iterator[Session]:
    """A ``Session`` whose scratch directory lives as long as the block."""
    with tempdirs.directory("debugfs") as scratch:
        yield Session(image, scratch)


def set_superblock(image: Path, field: str, value: str, *, env: Mapping[str, str] | None = None) -> None:
    """``ssv FIELD VALUE`` in a session of its own."""
    run(["debugfs", "-w", "-R", f"ssv {field} {value}", str(image)], env=env)
