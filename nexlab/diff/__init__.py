"""Compare two rootfs images: ``nexlab.diff(a, b)`` or ``nexlab.diff.diff(a, b)``.

The package is callable: ``import nexlab; nexlab.diff(a, b)`` must work even
after ``nexlab.diff`` was imported as a package (which replaces the lazy
attribute on ``nexlab`` with this module), so the module's class gets a
``__call__`` that forwards to ``diff``.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from nexlab.diff.api import diff
from nexlab.diff.model import Change, Diff, FilesystemChange, PackageChange, SizeRow

__all__ = ["Change", "Diff", "FilesystemChange", "PackageChange", "SizeRow", "diff"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Diff:
        return diff(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
