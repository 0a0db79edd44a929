"""A widget tree as plain, self-contained HTML: what the panel shows, without Jupyter.

ipywidgets' own ``embed_minimal_html`` needs its JavaScript manager from a
CDN, which an offline machine (or a report) does not have. This walks the
widgets nexlab's panels use and writes their current state as static HTML
controls: for a screenshot, a bug report, or a record of a session.

``StaticFallback`` puts that HTML (or the report a widget shows) in the widget's
own mimebundle, beside the live view, with a one-line ``text/plain``: a saved
notebook reopened without its kernel, untrusted, converted by nbconvert or shown
by a static viewer renders the report instead of ``AuditExplorer(children=…``.
A widget displayed with ``display(widget)`` or as a cell's value gets a display
id, and ``refresh_fallback()`` re-sends the bundle, so the saved notebook keeps
the widget's final state rather than the one it was displayed in.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from nexlab.report.html_writer import portable_svg

#: The live widget view's MIME type (ipywidgets 8).
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

CSS = """
body{font-family:system-ui,sans-serif;font-size:14px;color:#222;margin:1em}
.nx-vbox{display:flex;flex-direction:column;align-items:flex-start;gap:4px;margin:2px 0}
.nx-hbox{display:flex;flex-direction:row;gap:8px;align-items:center;flex-wrap:wrap}
.nx-field{display:flex;gap:6px;align-items:center}
.nx-field label{min-width:7em;text-align:right;color:#444}
.nx-field input[type=text]{width:32em;font-family:ui-monospace,monospace;padding:2px 4px}
button{min-width:8em;padding:4px 10px;border:1px solid #999;border-radius:2px;background:#eee}
button.success{background:#4caf50;color:#fff;border-color:#4caf50}
button:disabled{opacity:.45}
progress{width:40em;height:1.1em}
textarea{width:100%;height:10em;font-family:ui-monospace,monospace;font-size:12px}
.nx-tab-title{font-weight:600;border-bottom:2px solid #4e79a7;margin-top:.6em}
.nexlab-step table{border-collapse:collapse}.nexlab-step th,.nexlab-step td{padding:1px 8px 1px 0}
"""


def _field(description: str, control: str) -> str:
    label = f"<label>{html.escape(description)}</label>" if description else ""
    return f"<div class='nx-field'>{label}{control}</div>"


def static_html(widget: Any) -> str:
    """The widget (and its children) as static HTML, in its current state."""
    if isinstance(widget, widgets.Tab):
        titles = [widget.get_title(i) or f"tab {i + 1}" for i in range(len(widget.children))]
        parts = [
            f"<div class='nx-tab-title'>{html.escape(t)}</div>{static_html(c)}"
            for t, c in zip(titles, widget.children, strict=True)
        ]
        return f"<div class='nx-vbox'>{''.join(parts)}</div>"
    if isinstance(widget, widgets.HBox):
        return f"<div class='nx-hbox'>{''.join(static_html(c) for c in widget.children)}</div>"
    if isinstance(widget, widgets.Box):
        return f"<div class='nx-vbox'>{''.join(static_html(c) for c in widget.children)}</div>"
    if isinstance(widget, widgets.HTML):
        return f"<div>{widget.value}</div>"
    if isinstance(widget, widgets.Label):
        return f"<span>{html.escape(widget.value)}</span>"
    if isinstance(widget, widgets.Button):
        disabled = " disabled" if widget.disabled else ""
        style = f" class='{html.escape(widget.button_style)}'" if widget.button_style else ""
        return f"<button{style}{disabled}>{html.escape(widget.description)}</button>"
    if isinstance(widget, widgets.Checkbox):
        checked = " checked" if widget.value else ""
        return f"<label><input type='checkbox' disabled{checked}> {html.escape(widget.description)}</label>"
    if isinstance(widget, widgets.Textarea):
        return f"<textarea readonly>{html.escape(widget.value)}</textarea>"
    if isinstance(widget, widgets.Dropdown):
        options = "".join(
            f"<option{' selected' if label == widget.label else ''}>{html.escape(str(label))}</option>"
            for label in widget._options_labels
        )
        return _field(widget.description, f"<select disabled>{options}</select>")
    if isinstance(widget, widgets.FloatProgress | widgets.IntProgress):
        span = (widget.max - widget.min) or 1
        value = (widget.value - widget.min) / span
        return _field(widget.description, f"<progress value='{value:.3f}' max='1'></progress>")
    if isinstance(widget, widgets.Text | widgets.BoundedIntText | widgets.IntText):
        value = html.escape(str(widget.value), quote=True)
        placeholder = html.escape(getattr(widget, "placeholder", "") or "", quote=True)
        return _field(widget.description, f"<input type='text' readonly value='{value}' placeholder='{placeholder}'>")
    return f"<div><i>{html.escape(type(widget).__name__)}</i></div>"


#: The rules of CSS for a fallback inside a notebook: none that reaches outside ``.nx-static``.
NOTEBOOK_CSS = "".join(
    f".nx-static {rule}" for rule in CSS.strip().splitlines() if rule and not rule.startswith("body")
)


def fallback(widget: Any) -> str:
    """``widget``'s state as static HTML for a notebook output (no script, no page-wide style)."""
    return f"<style>{NOTEBOOK_CSS}</style><div class='nx-static'>{portable_svg(static_html(widget))}</div>"


class StaticFallback:
    """Mixin for a widget (or an object showing one): its mimebundle carries ``text/html``
    and a short ``text/plain`` beside the live view."""

    def fallback_html(self) -> str:
        """What a notebook shows where the live view cannot be (the report the widget shows)."""
        return fallback(self)

    def fallback_text(self) -> str:
        """One line for ``text/plain`` (never the widget tree's repr)."""
        return type(self).__name__

    def _live_bundle(self, **kwargs: Any) -> dict[str, Any] | None:
        parent = super()._repr_mimebundle_  # type: ignore[misc]
        return parent(**kwargs)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        live = self._live_bundle(**kwargs)
        if live is None:  # a closed widget has no view: show nothing, as ipywidgets does
            return None
        return {**live, "text/html": self.fallback_html(), "text/plain": self.fallback_text()}

    def _current_bundle(self) -> dict[str, Any] | None:
        # ipywidgets' close() replaces _repr_mimebundle_ with None on the instance: nothing to show.
        render = getattr(self, "_repr_mimebundle_", None)
        return render() if callable(render) else None

    def _ipython_display_(self) -> None:
        from IPython.display import display

        bundle = self._current_bundle()
        if bundle is None:
            return
        handle = display(bundle, raw=True, display_id=True)
        if handle is not None:
            self.__dict__.setdefault("_nexlab_display_ids", []).append(handle.display_id)

    def refresh_fallback(self) -> None:
        """Re-send the bundle to every place this was displayed: its ``text/html`` is then
        the current state, and a notebook saved now keeps that."""
        ids = self.__dict__.get("_nexlab_display_ids", [])
        if not ids:
            return
        from IPython.display import update_display

        bundle = self._current_bundle()
        if bundle is None:
            return
        for display_id in ids:
            update_display(bundle, raw=True, display_id=display_id)


def static_page(widget: Any, title: str) -> str:
    """A whole HTML page (no scripts, nothing fetched) showing ``widget``'s current state."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{static_html(widget)}</body></html>"
    )
