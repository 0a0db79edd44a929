"""Boot checks: start an image in a Firecracker-like QEMU VM and watch it reach the agent."""

from __future__ import annotations

import sys
import types
from typing import Any

from nexlab.boot.boot import boot, verify_boot
from nexlab.boot.console import Outcome
from nexlab.boot.result import BootResult

__all__ = ["BootResult", "Outcome", "boot", "verify_boot"]


class _CallableModule(types.ModuleType):
    """``nexlab.boot(image)`` must work although ``nexlab.boot`` is also this package.

    Once any ``nexlab.boot.*`` module is imported, Python binds the package to
    the ``boot`` attribute of ``nexlab``, shadowing the lazily exported
    function; calling the package calls the function instead.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> BootResult:
        return boot(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
