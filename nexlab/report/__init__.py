"""The presenter layer: every result rendered as text, Markdown, HTML or JSON.

``text(result)``, ``markdown(result)``, ``html(result)``, ``json_dict(result)``
and ``write(result, {"html": path, ...})`` work for an Audit, a Diff, a
ReproResult, a BootResult and the build steps' results. The models never import
this package; ``nexlab.display`` gives them ``__str__`` and ``_repr_html_``
through it.
"""

from nexlab.report.dispatch import document, html, json_dict, json_text, markdown, text, write

# Importing the per-type modules registers their documents and JSON contracts.
from nexlab.report import audit_doc, boot, diff_doc, repro_doc, steps  # noqa: F401  # isort: skip

__all__ = ["document", "html", "json_dict", "json_text", "markdown", "text", "write"]
