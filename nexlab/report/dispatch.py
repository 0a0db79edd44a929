"""What every presenter is called through: one function per format, registered per result type.

Each result type registers ``document`` (its sections, built once) and, when it
has a JSON contract, ``json_dict`` and ``json_text``; ``text``, ``markdown`` and
``html`` hand the document to the writer of their format. ``write`` renders
several formats of one result and writes each file atomically.
"""

from __future__ import annotations

import importlib
import os
import stat
import sys
from collections.abc import Callable, Iterable, Mapping
from functools import singledispatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexlab.errors import InputError

if TYPE_CHECKING:
    from nexlab.report.document import Document

#: The module that registers the presenters of each result type, imported on first use:
#: printing a build step need not import the auditor, the differ and the boot checker.
PRESENTERS = {
    "nexlab.audit.audit.Audit": "nexlab.report.audit_doc",
    "nexlab.diff.model.Diff": "nexlab.report.diff_doc",
    "nexlab.repro.model.ReproResult": "nexlab.report.repro_doc",
    "nexlab.boot.result.BootResult": "nexlab.report.boot",
    "nexlab.builder.results.StepResult": "nexlab.report.steps",
    "nexlab.builder.mount.Mount": "nexlab.report.steps",
    "nexlab.slim.result.SlimResult": "nexlab.report.steps",
}


def _registered(result: object) -> bool:
    """Import the presenters of ``result``'s type; False when there are none or they were loaded."""
    for klass in type(result).__mro__:
        module = PRESENTERS.get(f"{klass.__module__}.{klass.__qualname__}")
        if module is not None and module not in sys.modules:
            importlib.import_module(module)
            return True
    return False


def _unknown(result: object, what: str) -> TypeError:
    return TypeError(f"nexlab.report has no {what} for {type(result).__name__}")


@singledispatch
def document(result: object) -> Document:
    """The sections of ``result``, for every writer."""
    if _registered(result):
        return document(result)
    raise _unknown(result, "document")


@singledispatch
def text(result: object) -> str:
    """``result`` for a terminal."""
    from nexlab.report import text_writer  # each writer on first use: a build prints text only

    return text_writer.render(document(result))


@singledispatch
def markdown(result: object) -> str:
    """``result`` as Markdown."""
    from nexlab.report import markdown_writer

    return markdown_writer.render(document(result))


@singledispatch
def html(result: object, *, standalone: bool = True) -> str:
    """``result`` as a self-contained page, or a notebook fragment (``standalone=False``)."""
    from nexlab.report import html_writer

    return html_writer.render(document(result), standalone=standalone)


@singledispatch
def json_dict(result: object) -> dict[str, Any]:
    """The JSON contract of ``result`` (README.md, "JSON contracts") as a dict."""
    if _registered(result):
        return json_dict(result)
    raise _unknown(result, "JSON contract")


@singledispatch
def json_text(result: object) -> str:
    """The JSON contract of ``result`` as the file ``--json-file`` writes."""
    if _registered(result):
        return json_text(result)
    raise _unknown(result, "JSON contract")


@singledispatch
def json_chunks(result: object) -> Iterable[str]:
    """``json_text(result)`` in pieces that join to it: what ``write`` streams into a file.

    An audit registers a generator (its files a few thousand at a time), so a
    million-file report is never one string; everything else is one piece.
    """
    return (json_text(result),)


#: The formats ``write`` knows, by the name the CLI flags use.
FORMATS: dict[str, Callable[[Any], str]] = {"html": html, "markdown": markdown, "json": json_text, "text": text}
#: Formats ``write`` takes in pieces as it writes them, instead of one string.
STREAMED: dict[str, Callable[[Any], Iterable[str]]] = {"json": json_chunks}


def write(result: object, outputs: Mapping[str, str | os.PathLike[str] | None]) -> list[Path]:
    """Write ``result`` in each format of ``outputs`` (format -> path; None is skipped).

    Every format is rendered before any file is written, so an error leaves no
    half set. Each file goes through a temporary name in its directory and a
    rename; a destination that is a device or a FIFO (``/dev/stdout``) is written
    as it is.
    """
    from nexlab.builder.output import write_new

    unknown = set(outputs) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown report formats: {', '.join(sorted(unknown))}")
    rendered = [
        (Path(path), STREAMED[fmt](result) if fmt in STREAMED else FORMATS[fmt](result))
        for fmt, path in outputs.items()
        if path is not None
    ]
    # A streamed format is rendered while it is written: it goes first, so that the
    # others, rendered above, are still unwritten if it fails.
    order = sorted(range(len(rendered)), key=lambda n: isinstance(rendered[n][1], str))
    for path, content in (rendered[n] for n in order):
        data = content.encode("utf-8") if isinstance(content, str) else (chunk.encode("utf-8") for chunk in content)
        if _special(path):
            with open(path, "wb") as stream:
                for chunk in (data,) if isinstance(data, bytes) else data:
                    stream.write(chunk)
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot make the directory {path.parent}: {exc.strerror or exc}") from None
            if path.is_dir():
                raise InputError(f"{path} is a directory")
            write_new(path, data)
    return [path for path, _ in rendered]


def _special(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:  # not there yet, or a file where a directory should be: write() says which
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISBLK(mode)
