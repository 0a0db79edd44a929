"""Hostile input for the auditor's own parsing: databases, account files, mutated images."""

from __future__ import annotations

import random
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nexlab.audit import audit
from nexlab.audit.findings import RULES, Facts, evaluate
from nexlab.audit.inventory import FileRecord, canonical_path
from nexlab.audit.packages import attribute, parse_apk, parse_dpkg_diversions, parse_dpkg_status, read_databases
from nexlab.errors import NexlabError

LINES = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            ["P:x", "V:1", "I:-5", "I:zz", "F:", "R:a", "F:../../etc", "R:../x", "Package: p", "Status: ok"]
        ),
    ),
    max_size=30,
).map("\n".join)


@given(LINES)
@settings(max_examples=300, deadline=None)
def test_package_parsers_never_raise(text: str) -> None:
    for parse in (parse_apk, parse_dpkg_status):
        for package in parse(text):
            assert package.declared_size >= 0
    parse_dpkg_diversions(text)


def _dir(path: str) -> FileRecord:
    return FileRecord(path, "dir", 0o755, 0, 0, 4096, 4096, 2, abs(hash(path)) % 10**6, 0, None, None)


def _file(path: str, target: str | None = None) -> FileRecord:
    kind = "symlink" if target is not None else "file"
    return FileRecord(path, kind, 0o644, 0, 0, 1, 4096, 1, abs(hash(path)) % 10**6, 0, None, target)


@given(passwd=LINES, shadow=LINES, inittab=LINES)
@settings(max_examples=200, deadline=None)
def test_rules_never_raise_on_hostile_account_files(passwd: str, shadow: str, inittab: str) -> None:
    contents = {"/etc/passwd": passwd, "/etc/shadow": shadow, "/etc/inittab": inittab}
    records = {p: _dir(p) for p in ("/", "/etc", "/etc/runlevels", "/etc/runlevels/boot")}
    records.update({p: _file(p) for p in contents})
    # A symlink loop and a link out of the image, where the rules look.
    records["/etc/runlevels/boot/agent"] = _file("/etc/runlevels/boot/agent", "/etc/runlevels/boot/agent")
    records["/sbin"] = _file("/sbin", "../../../../host")
    facts = Facts(
        records=records, read=lambda p: contents[p].encode("utf-8", "surrogatepass") if p in contents else None
    )
    findings = evaluate(facts, RULES)
    assert {f.code for f in findings} >= {"agent-missing", "service-missing"}


def test_symlinks_never_leave_the_image() -> None:
    records = {
        "/": _dir("/"),
        "/etc": _dir("/etc"),
        "/etc/up": _file("/etc/up", "../../../../../etc"),
        "/etc/abs": _file("/etc/abs", "/etc"),
        "/etc/loop": _file("/etc/loop", "loop"),
    }
    assert canonical_path(records, "/etc/up") == "/etc"  # ".." stops at the image's root
    assert canonical_path(records, "/etc/abs/up/abs") == "/etc"
    assert canonical_path(records, "/etc/loop") is None


def test_package_paths_are_clamped_inside_the_image() -> None:
    records = {"/": _dir("/"), "/etc": _dir("/etc"), "/etc/motd": _file("/etc/motd")}
    # "../../etc" cannot climb out: like the kernel, ".." stops at the root.
    db = "P:evil\nV:1\nI:10\nF:../../etc\nR:motd\nF:etc\nR:motd\n"
    parsed, _notes = read_databases(lambda p: db.encode() if p == "/lib/apk/db/installed" else None)
    packages, owner = attribute(parsed, records)
    assert owner == {"/etc/motd": "evil", "/etc": "evil"}
    assert packages[0].files == 1


def test_mutated_images_give_an_answer_or_a_clear_error(bare_image: Path, tmp_path: Path) -> None:
    data = bytearray(bare_image.read_bytes())
    rng = random.Random(3)
    outcomes = {"answer": 0, "error": 0}
    for case in range(60):
        mutated = bytearray(data)
        # The first 64 KiB hold the superblock, group descriptors, bitmaps and inode tables.
        for _ in range(rng.randint(1, 40)):
            mutated[rng.randrange(1024, 65536)] = rng.randrange(256)
        path = tmp_path / f"m{case}.ext4"
        path.write_bytes(mutated)
        start = time.monotonic()
        try:
            audit(path, fsck_check=False)
            outcomes["answer"] += 1
        except NexlabError:
            outcomes["error"] += 1
        assert time.monotonic() - start < 10, f"case {case} took too long"
    assert sum(outcomes.values()) == 60


def test_oversized_account_file_is_read_partly_with_a_warning(tmp_path: Path) -> None:
    from nexlab.run import run

    staging = tmp_path / "root"
    (staging / "etc").mkdir(parents=True)
    # A valid nex line at the start, then 2 MiB of junk: we read 1 MiB and say so.
    (staging / "etc" / "passwd").write_bytes(b"nex:x:1000:1000::/home/nex:/bin/sh\n" + b"x" * (2 << 20))
    image = tmp_path / "big.ext4"
    run(["mkfs.ext4", "-q", "-F", "-d", str(staging), str(image), "16M"])
    result = audit(image, fsck_check=False)
    assert any(w.startswith("/etc/passwd: only the first 1048576 of") for w in result.warnings)
    assert "nex-user" not in {f.code for f in result.findings}
