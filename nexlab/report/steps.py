"""A build step's result (or a live Mount) as a compact document: its facts and its log's last lines."""

from __future__ import annotations

from typing import Protocol

from nexlab.builder.mount import Mount
from nexlab.builder.results import BuildResult, StepResult
from nexlab.report.build_json import build_to_json, dumps
from nexlab.report.dispatch import document, json_dict, json_text
from nexlab.report.document import Document, Facts, Preformatted, Section
from nexlab.slim.result import SlimResult

#: Log lines shown (folded) under a step in a notebook.
TAIL = 15


class _Step(Protocol):
    step: str

    def facts(self) -> list[tuple[str, str]]: ...

    @property
    def log_tail(self) -> tuple[str, ...]: ...


json_dict.register(BuildResult)(build_to_json)


@json_text.register(BuildResult)
def build_json(result: BuildResult) -> str:
    return dumps(build_to_json(result))


@document.register(StepResult)
@document.register(Mount)
@document.register(SlimResult)
def step_document(result: _Step) -> Document:
    sections: list[Section] = [Facts(result.step, result.facts())]
    if result.log_tail:
        sections.append(Preformatted("log (last lines)", "\n".join(result.log_tail[-TAIL:])))
    return Document(title=result.step, sections=sections, compact=True, ok=True)


def build_text(result: BuildResult) -> str:
    """``nexlab build``'s plain output: ``text(result)`` without waiting for a digest nobody
    read yet (the mount path computes its plain output's on first read; ``--json`` shows it)."""
    from nexlab.report import text_writer

    facts = Facts(result.step, result.facts(digest=False))
    return text_writer.render(Document(title=result.step, sections=[facts], compact=True, ok=True))
