"""Clean-up that a second Ctrl-C cannot cut short.

The CLI turns SIGINT and SIGTERM into ``KeyboardInterrupt``. Raised in the middle
of a ``finally`` that is unmounting, detaching or deleting, it would leave the
rest undone (and the CLI would still say "cleaned up"). Inside ``deferred()`` the
two signals are *blocked* (``pthread_sigmask``), not merely caught: a blocked
signal stays pending and is delivered, to the handler in place, when the
outermost block ends. Blocking rather than catching matters for the programs run
inside the block: they inherit the mask across ``exec``, so a terminal's Ctrl-C
(sent to the whole process group) cannot kill ``losetup`` or ``umount`` half-way.
A caught-only signal would: CPython's ``vfork`` child resets caught signals to
their default before ``exec``, and one that arrived meanwhile kills it.
Outside the main thread (a notebook worker) Python delivers no signals there
anyway, so the block does nothing.

Threads that block the two signals for good (build-many's workers, the background
hashes: so that a Ctrl-C reaches the main thread) must not hand that mask on:
``unblock_in_child()`` is the ``preexec_fn`` that gives a program started there
SIGINT and SIGTERM back (only ``deferred()`` holds them on purpose).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_depth = 0
_previous_mask: set[int | signal.Signals] = set()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM held back; any that arrived are delivered afterwards."""
    global _depth, _previous_mask
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        _previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            # Unblocking delivers what is pending; Python then runs its handler (for SIGINT,
            # KeyboardInterrupt) at the next instruction, i.e. as this block ends.
            signal.pthread_sigmask(signal.SIG_SETMASK, _previous_mask)


def _unblock() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)


def unblock_in_child() -> Callable[[], None] | None:
    """A ``preexec_fn`` that unblocks SIGINT and SIGTERM in the child, when the calling thread
    blocks them other than inside ``deferred()``; else None (the fast path: no preexec).

    A child inherits its parent thread's mask across ``exec``: started from a thread that
    blocks SIGTERM, a program could not be stopped by it (build-many's builds, whose
    ``docker``, ``mkfs.ext4`` or QEMU would outlive a ``kill``).
    """
    if threading.current_thread() is threading.main_thread() and _depth > 0:
        return None  # held back on purpose: the program must not die half-way
    if _SIGNALS.isdisjoint(signal.pthread_sigmask(signal.SIG_BLOCK, ())):
        return None
    return _unblock
