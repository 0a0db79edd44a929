"""A ReproResult as a document: the verdict, the runs and, for each run that differs, its diff."""

from __future__ import annotations

from nexlab.report.diff_doc import diff_sections
from nexlab.report.dispatch import document, json_dict, json_text
from nexlab.report.document import Code, Document, Facts, Group, Paragraph, Section, Table, Verdict
from nexlab.report.repro_json import repro_json, repro_to_json
from nexlab.repro.model import ReproResult

json_dict.register(ReproResult)(repro_to_json)
json_text.register(ReproResult)(repro_json)


@document.register(ReproResult)
def repro_document(result: ReproResult) -> Document:
    sections: list[Section] = [
        Verdict(result.verdict, "ok" if result.identical else "bad"),
        Paragraph(
            f"{result.mode} build, {len(result.runs)} runs, each with another build directory, umask, "
            "time zone and locale, at least a second apart."
        ),
        Facts("inputs", sorted(result.inputs.items())),
        Table(
            "runs",
            ["run", "sha256", "time", "umask", "TZ", "locale", "build path"],
            [
                (
                    run.index + 1,
                    Code(run.sha256),
                    f"{run.seconds:.1f} s",
                    f"{run.variation.umask:04o}",
                    run.variation.tz,
                    run.variation.locale,
                    Code(run.variation.build_path),
                )
                for run in result.runs
            ],
            numeric=[0, 2],
        ),
    ]
    sections += [Group(f"run 1 against run {index + 1}", diff_sections(d)) for index, d in result.diffs]
    return Document(title=f"nexlab repro {result.name}", sections=sections)
