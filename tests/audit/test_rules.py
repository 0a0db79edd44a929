"""The findings rules are data: the registry, ``nexlab audit --list-rules`` and the README agree."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from nexlab.audit import findings
from nexlab.audit.findings import RULES, Facts, Rule, Severity, evaluate
from nexlab.audit.inventory import FileRecord
from nexlab.cli.cmd_audit import rules_markdown

README = Path(__file__).resolve().parents[2] / "README.md"
SOURCE = Path(findings.__file__).read_text(encoding="utf-8")


def readme_table() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("| code | severity | when |")
    return text[start : text.index("\n\n", start) + 1]


def test_readme_table_is_the_registry() -> None:
    assert readme_table() == rules_markdown(), "regenerate it: nexlab audit --list-rules --markdown -"
    assert "`service-interpreter-missing`" in readme_table()


def test_every_code_a_check_can_report_is_registered() -> None:
    # Every finding is made from a Rule record: the codes in the source are exactly the registry's.
    made_from = set(re.findall(r"_finding\(\s*([A-Z_]+),", SOURCE))
    made_from.discard("rule")
    constants = {name for name, value in vars(findings).items() if isinstance(value, Rule)}
    assert made_from <= constants
    assert {getattr(findings, name) for name in constants} == set(RULES)
    assert len({rule.code for rule in RULES}) == len(RULES), "codes are unique"
    for rule in RULES:
        assert rule.summary and rule.fix and callable(rule.check)
        assert isinstance(rule.severity, Severity)


def _record(path: str, kind: str = "file", mode: int = 0o644, uid: int = 0) -> FileRecord:
    return FileRecord(
        path=path,
        type=kind,
        mode=mode,
        uid=uid,
        gid=uid,
        size=0,
        allocated=0,
        nlink=1,
        inode=0,
        mtime=0,
        sha256=None,
        target=None,
    )


def test_findings_take_their_severity_from_the_registry() -> None:
    # An almost empty image breaks many rules at once; each finding's severity is its rule's.
    records = {
        "/": _record("/", "dir", 0o755),
        "/tmp": _record("/tmp", "dir", 0o755),
        "/usr/bin/su": _record("/usr/bin/su", mode=0o4755),
        "/usr/bin/wall": _record("/usr/bin/wall", mode=0o2755),
    }
    found = evaluate(Facts(records=records, read=lambda path: None, inode_size=128))
    codes = {f.code for f in found}
    assert {"agent-missing", "no-init", "tmp-mode", "setuid", "setgid", "small-inodes"} <= codes
    for finding in found:
        assert finding.severity == findings.BY_CODE[finding.code].severity
    # Asking for some rules keeps only theirs, though their check reports others too.
    only = evaluate(Facts(records=records, read=lambda path: None), [findings.SETGID])
    assert [f.code for f in only] == ["setgid"]


def test_list_rules_cli() -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nexlab.cli.main", "audit", "--list-rules", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    text = cli()
    assert text.returncode == 0, text.stderr
    for rule in RULES:
        assert re.search(rf"^{re.escape(rule.code)} +{rule.severity.value} ", text.stdout, re.M)
        assert f"fix: {rule.fix}" in text.stdout
    doc = json.loads(cli("--json").stdout)
    assert doc["version"] == 1
    assert [r["code"] for r in doc["rules"]] == [rule.code for rule in RULES]
    assert doc["rules"][0] == RULES[0].to_json()
    assert cli("--markdown", "-").stdout == rules_markdown()
