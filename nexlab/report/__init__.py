"""The presenter layer: every result rendered as text, Markdown, HTML or JSON.

``text(result)``, ``markdown(result)``, ``html(result)``, ``json_dict(result)``
and ``write(result, {"html": path, ...})`` work for an Audit, a Diff, a
ReproResult, a BootResult and the build steps' results. The models never import
this package; ``nexlab.display`` gives them ``__str__`` and ``_repr_html_``
through it. Each type's presenters (``audit_doc``, ``diff_doc``, ``repro_doc``,
``boot``, ``steps``) are imported the first time a result of that type is shown.
"""

from nexlab.report.dispatch import document, html, json_dict, json_text, markdown, text, write

__all__ = ["document", "html", "json_dict", "json_text", "markdown", "text", "write"]
