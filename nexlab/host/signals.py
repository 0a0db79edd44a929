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
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

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
