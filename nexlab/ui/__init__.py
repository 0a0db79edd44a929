"""Notebook widgets (ipywidgets). The core never imports this package.

``BuilderPanel`` runs the build steps one button at a time, ``AuditExplorer``
filters an audit's inventory, ``DiffViewer`` shows what differs between two
images.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BuilderPanel": "nexlab.ui.builder",
    "WidgetProgress": "nexlab.ui.progress",
    "AuditExplorer": "nexlab.ui.explorer",
    "DiffViewer": "nexlab.ui.diff_viewer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy, so importing one widget does not import the auditor and the differ.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nexlab.ui' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
