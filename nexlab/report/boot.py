"""A boot check as a document: what happened, the VM, and the last console lines."""

from __future__ import annotations

from nexlab.boot.result import BootResult
from nexlab.report.build_json import boot_to_json, dumps
from nexlab.report.dispatch import document, json_dict, json_text
from nexlab.report.document import Document, Facts, Preformatted, Section

#: Console lines kept in the report of a failed boot.
TAIL = 15


def boot_facts(result: BootResult) -> list[tuple[str, str]]:
    facts = [
        ("image", str(result.image)),
        ("result", "agent started" if result.ok else f"FAILED: {result.reason}"),
    ]
    if result.ok:
        facts.append(("started by", result.reason.split(": ", 1)[-1]))
    if result.seconds_to_agent is not None:
        facts.append(("to agent", f"{result.seconds_to_agent:.1f} s"))
    accel = result.accel if result.kvm_fallback is None else f"{result.accel} (KVM: {result.kvm_fallback})"
    facts += [
        ("VM", f"{result.machine}, {accel}, {result.memory_mib} MiB"),
        ("kernel", str(result.kernel)),
        ("initrd", str(result.initrd) if result.initrd else "none"),
        ("cmdline", result.cmdline),
        ("console log", str(result.console_log) if result.console_log else "not kept (use --log FILE)"),
        ("time", f"{result.seconds:.1f} s"),
    ]
    return facts


json_dict.register(BootResult)(boot_to_json)


@json_text.register(BootResult)
def boot_json(result: BootResult) -> str:
    return dumps(boot_to_json(result))


@document.register(BootResult)
def boot_document(result: BootResult) -> Document:
    sections: list[Section] = [Facts("boot", boot_facts(result))]
    if result.last_lines:
        # Open (and so in the terminal too) when the boot failed: the lines say why.
        text = "\n".join(result.last_lines)
        sections.append(Preformatted("last console lines", text, lines=TAIL, tail=True, open=not result.ok))
    return Document(title="boot", sections=sections, compact=True, ok=result.ok)
