"""One temporary base directory per nexlab run: every temporary file nexlab makes is under it.

The base is ``nexlab-run-nxPID-RANDOM`` in ``$TMPDIR`` (else ``/var/tmp``: a
decompressed image or a repro run's images can be larger than a RAM-backed
``/tmp``), private (0700), made on first use and removed when the process
exits. With ``keep()`` (``nexlab --debug``) nothing under it is removed, so a
failed build's scratch files can be read afterwards; ``where()`` says where.

The PID in the name, and a record in the state directory, let a later run's
reaper remove the base of a run that was killed (SIGKILL runs no clean-up).
Two temporaries stay where they are, named the same way: the reproducible
build's staging tree (a capped tmpfs, or $NEXLAB_STAGING_DIR), and the outputs'
partial files, which sit beside the output so that the final rename is atomic.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("nexlab")

#: Where the base goes when $TMPDIR is not set.
DEFAULT_PARENT = Path("/var/tmp")

_lock = threading.Lock()
_base: Path | None = None
_owner = 0
_keep = False
_records = contextlib.ExitStack()


def name(kind: str) -> str:
    """``nexlab-KIND-nxPID-RANDOM``: the name of every nexlab temporary, whose PID the reaper reads."""
    from nexlab.host import owned

    return f"nexlab-{kind}-{owned.tag()}"


def parent() -> Path:
    """Where the base goes: ``$TMPDIR``, else ``/var/tmp`` (else the system's default)."""
    configured = os.environ.get("TMPDIR")
    if configured:
        return Path(configured)
    return DEFAULT_PARENT if os.access(DEFAULT_PARENT, os.W_OK | os.X_OK) else Path(tempfile.gettempdir())


def base() -> Path:
    """This run's base directory, made (0700) on first use."""
    global _base, _owner
    with _lock:
        if _base is None or not _base.is_dir():
            from nexlab.errors import InputError
            from nexlab.host import owned

            where = parent()
            try:
                made = Path(tempfile.mkdtemp(prefix=name("run") + "-", dir=where))
            except OSError as exc:
                raise InputError(
                    f"cannot make a temporary directory in {where}: {exc.strerror}",
                    hint="set TMPDIR to a writable directory with room for the image",
                ) from exc
            # Recorded as a staging directory: the reaper removes those of dead processes.
            _records.enter_context(owned.recorded("staging", made))
            _base, _owner = made, os.getpid()
            log.debug("temporary files in %s", made)
        return _base


def keep(flag: bool = True) -> None:
    """Keep every temporary (``--debug``): nothing under the base is removed, at exit or before."""
    global _keep
    _keep = flag


def kept() -> bool:
    return _keep


def where() -> Path | None:
    """The base directory, if this run made one."""
    return _base


def mkdtemp(kind: str) -> Path:
    """A fresh private directory under the base, removed with the base at exit."""
    return Path(tempfile.mkdtemp(prefix=name(kind) + "-", dir=base()))


def directory(kind: str) -> contextlib.AbstractContextManager[Path]:
    """A fresh private directory under the base for the block; removed after it unless kept.

    Made now, not on entering the block, so that a failure to make it is raised here.
    """
    return removing(mkdtemp(kind))


@contextlib.contextmanager
def removing(path: Path, *, keepable: bool = True) -> Iterator[Path]:
    """``path`` (a temporary directory) for the block; removed after it unless kept.

    ``keepable=False`` for a directory outside the base (in a caller's own
    directory): ``--debug`` does not leave things there.
    """
    try:
        yield path
    finally:
        if not (_keep and keepable):
            _remove(path)


def _remove(path: Path) -> None:
    from nexlab.host import safefs, signals

    # Never half-removed by a second Ctrl-C, and never through a link planted inside.
    with signals.deferred(), contextlib.suppress(OSError):
        safefs.rmtree(path)


@atexit.register
def cleanup() -> None:
    """Remove the base (unless kept); the CLI's --debug says where it was kept instead."""
    global _base
    with _lock:
        made, _base = _base, None
    if made is None or _owner != os.getpid():
        return  # a forked child exits: the base is its parent's
    if not _keep:
        _remove(made)
    # The record goes either way: a kept base must not be reaped as a dead run's.
    _records.close()
