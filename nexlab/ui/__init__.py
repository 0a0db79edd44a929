"""Notebook widgets (ipywidgets). The core never imports this package.

``BuilderPanel`` runs the build steps one button at a time, ``AuditExplorer``
filters an audit's inventory, ``DiffViewer`` shows what differs between two
images; ``WidgetProgress`` is the ``Progress`` they report through (and what a
build shows in a notebook when given none), and ``static_page`` writes a panel's
state as plain HTML. Each of them carries its report as static HTML in its
mimebundle, so a saved notebook reads without the live views (``nexlab.ui.static``).
"""

from __future__ import annotations

from nexlab.ui.builder import BuilderPanel
from nexlab.ui.diff_viewer import DiffViewer
from nexlab.ui.explorer import AuditExplorer
from nexlab.ui.progress import WidgetProgress
from nexlab.ui.static import static_page

__all__ = ["AuditExplorer", "BuilderPanel", "DiffViewer", "WidgetProgress", "static_page"]
