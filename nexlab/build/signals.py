"""Clean-up that a second Ctrl-C cannot cut short.

The CLI turns SIGINT and SIGTERM into ``KeyboardInterrupt``. Raised in the middle
of a ``finally`` that is unmounting, detaching or deleting, it would leave the
rest undone (and the CLI would still say "cleaned up"). Inside ``deferred()`` a
signal is only noted; it is acted on, with the handler that was in place, when
the outermost block ends. Outside the main thread (a notebook worker) Python
delivers no signals there anyway, so the block does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_depth = 0
_pending: list[int] = []
_saved: dict[int, Any] = {}


def _note(signum: int, frame: FrameType | None) -> None:
    _pending.append(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM held back; re-deliver the first one afterwards."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        _pending.clear()
        for signum in _SIGNALS:
            _saved[signum] = signal.signal(signum, _note)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            for signum in _SIGNALS:
                signal.signal(signum, _saved.pop(signum))
            if _pending:
                _deliver(_pending[0])


def pending() -> bool:
    """A signal arrived in the current ``deferred()`` block."""
    return bool(_pending) and _depth > 0


def _deliver(signum: int) -> None:
    handler: Callable[[int, FrameType | None], Any] | int | None = signal.getsignal(signum)
    _pending.clear()
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)
