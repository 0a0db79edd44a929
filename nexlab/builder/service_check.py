"""After a build: read the result with nexlab's own reader and refuse an image whose agent cannot start.

The audit's rules for the agent and its service (for the image's init) run on
the finished image; a HIGH or worse finding there means the build made
something that would never boot to the agent, so the build fails instead of
leaving it to ``nexlab audit`` or a boot that times out.
"""

from __future__ import annotations

from pathlib import Path

from nexlab.builder.init import InitKind
from nexlab.errors import AgentServiceError


def check_service(image: Path, built_for: InitKind) -> None:
    """``AgentServiceError`` (one line) when the agent or its service cannot run in ``image``."""
    from nexlab.audit import findings as rules
    from nexlab.audit.audit import _reader
    from nexlab.audit.inventory import record_from_entry
    from nexlab.image import open_image

    cut: list[str] = []
    with open_image(image) as fs:
        records = {e.path: record_from_entry(e, None, None) for e in fs.walk()}
        facts = rules.Facts(records=records, read=_reader(fs, records, rules.READ_LIMIT, cut))
        found = rules.evaluate(facts, (rules.agent, rules.agent_service))
    blocking = [f for f in found if f.severity.rank >= rules.Severity.HIGH.rank]
    if blocking:
        first = blocking[0]
        raise AgentServiceError(
            f"the image's agent cannot start ({built_for.value} service): {first.message}",
            hint=first.fix,
        )
