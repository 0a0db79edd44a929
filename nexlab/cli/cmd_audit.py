"""`nexlab audit IMAGE`: inventory, packages, size budget and findings, without mounting.

Exit status: 0 the gate passed (or none was asked for), 1 a gate rule failed,
2 the image could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nexlab.cli.terminal import StepsOnly, TerminalProgress

NAME = "audit"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "audit an ext2/3/4 image: inventory, packages, size budget, findings"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser(
        NAME,
        help=HELP,
        description="Read IMAGE without mounting it (no root needed) and report what is in it, where the "
        "space goes, what a workload can still use, and what is wrong for Nex. With --max-size, "
        "--min-free or --fail-on it is a CI gate: exit 1 when a rule fails.",
    )
    audit.add_argument("image", type=Path, nargs="?", metavar="IMAGE", help="the rootfs.ext4 (or any ext2/3/4 image)")
    audit.add_argument(
        "--list-rules",
        action="store_true",
        help="list the findings rules (code, severity, when, fix) and exit; with --json as JSON, "
        "with --markdown FILE as the README's table (- for stdout)",
    )
    audit.add_argument("--json", action="store_true", help="print the JSON report to stdout instead of the summary")
    audit.add_argument("--json-file", type=Path, metavar="FILE", help="also write the JSON report to FILE")
    audit.add_argument("--html", type=Path, metavar="FILE", help="write a self-contained HTML report with treemaps")
    audit.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown summary")
    audit.add_argument("--mtree", type=Path, metavar="FILE", help="write a BSD mtree manifest (with sha256)")
    audit.add_argument(
        "--sbom",
        nargs=2,
        action="append",
        metavar=("FORMAT", "FILE"),
        help="also write an SBOM of the image to FILE: FORMAT spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.6 "
        "JSON), validated before it is written; give it twice for both. Implies hashing (every file's sha256)",
    )
    audit.add_argument("--workload", metavar="SIZE", help="does a workload binary of SIZE fit? e.g. 64MiB")
    audit.add_argument("--max-size", metavar="SIZE", help="gate: fail if the image is larger than SIZE")
    audit.add_argument("--min-free", metavar="SIZE", help="gate: fail if nex can write less than SIZE")
    audit.add_argument(
        "--fail-on",
        metavar="SEVERITY",
        help="gate: fail on a finding of SEVERITY or worse (info, low, medium, high, critical)",
    )
    audit.add_argument("--no-hash", action="store_true", help="skip sha256 of file contents (faster)")
    audit.add_argument("--no-fsck", action="store_true", help="skip e2fsck -fn")
    audit.add_argument(
        "--fsck-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="stop e2fsck -fn after S seconds and report fsck-unfinished (default 60)",
    )
    audit.set_defaults(handler=run_audit, audit_parser=audit)


def _sbom_requests(pairs: list[list[str]]) -> dict[str, Path]:
    """``--sbom FORMAT FILE`` pairs as ``{format: path}``, checked before the (slow) read."""
    from nexlab import sbom
    from nexlab.errors import SbomError

    wanted: dict[str, Path] = {}
    for fmt, file in pairs:
        name = sbom.parse_format(fmt)
        if name in wanted:
            raise SbomError(f"--sbom {name} given twice")
        wanted[name] = Path(file)
        sbom.check_writable(wanted[name])
    return wanted


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 1e9:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def rules_text() -> str:
    """The registry as a text table: code, severity and when, the usual fix below each."""
    from nexlab.audit.findings import RULES

    width = max(len(rule.code) for rule in RULES)
    lines = [f"{'code':<{width}}  severity  when"]
    for rule in RULES:
        lines.append(f"{rule.code:<{width}}  {rule.severity.value:<8}  {rule.summary.replace('`', '')}")
        lines.append(f"{'':<{width}}  {'':<8}  fix: {rule.fix}")
    return "\n".join(lines) + "\n"


def rules_markdown() -> str:
    """The registry as the README's findings table (tests/audit/test_rules.py keeps the README in step)."""
    from nexlab.audit.findings import RULES

    lines = ["| code | severity | when |", "|---|---|---|"]
    lines += [f"| `{rule.code}` | {rule.severity.value} | {rule.summary} |" for rule in RULES]
    return "\n".join(lines) + "\n"


def _list_rules(args: argparse.Namespace) -> int:
    if args.json:
        from nexlab.audit.findings import RULES

        doc = {"version": 1, "rules": [rule.to_json() for rule in RULES]}
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n")
    elif args.markdown:
        if str(args.markdown) == "-":
            sys.stdout.write(rules_markdown())
        else:
            args.markdown.write_text(rules_markdown(), encoding="utf-8")
            print(f"wrote {args.markdown}")
    else:
        sys.stdout.write(rules_text())
    return 0


def run_audit(args: argparse.Namespace) -> int:
    if args.list_rules:
        return _list_rules(args)
    if args.image is None:
        args.audit_parser.error("the following arguments are required: IMAGE")
    from nexlab.audit.audit import audit
    from nexlab.audit.findings import Severity
    from nexlab.audit.gate import Gate, check
    from nexlab.sizes import parse_size

    # Parse every option before the (slow) read, so a typo fails at once.
    gate = Gate(
        max_size=parse_size(args.max_size) if args.max_size else None,
        min_free=parse_size(args.min_free) if args.min_free else None,
        fail_on=Severity.parse(args.fail_on) if args.fail_on else None,
    )
    workload = parse_size(args.workload) if args.workload else None
    sboms = _sbom_requests(args.sbom or [])
    if args.mtree and args.no_hash:
        print("nexlab audit: note: --mtree still hashes every file (mtree carries sha256)", file=sys.stderr)
    if sboms and args.no_hash:
        print("nexlab audit: note: --sbom hashes every file anyway (an SBOM carries sha256)", file=sys.stderr)

    limits = {"fsck_timeout": args.fsck_timeout} if args.fsck_timeout else {}
    progress = StepsOnly(TerminalProgress(), frozenset({"decompress"}))
    result = audit(
        args.image,
        workload=workload,
        hash=bool(sboms) or not args.no_hash,
        fsck_check=not args.no_fsck,
        progress=progress,
        **limits,
    )

    from nexlab import report

    if args.json:
        from nexlab.report.audit_json import iter_audit_json

        # In chunks as they are encoded: a million files is never one giant string.
        for chunk in iter_audit_json(result):
            sys.stdout.write(chunk)
        sys.stdout.write("\n")
    else:
        print(report.text(result))
    written = report.write(result, {"json": args.json_file, "html": args.html, "markdown": args.markdown})
    if args.mtree:
        from nexlab.report.mtree import write_mtree

        written.append(write_mtree(result.image, args.mtree))
    if sboms:
        from nexlab import sbom

        written += sbom.write(result, sboms)
    # Reports go to stderr when stdout carries the JSON.
    notes = sys.stderr if args.json else sys.stdout
    for path in written:
        print(f"wrote {path}", file=notes)

    results = check(result, gate)
    for outcome in results:
        print(f"gate: {outcome}", file=notes if outcome.passed else sys.stderr)
    return 1 if any(not outcome.passed for outcome in results) else 0
