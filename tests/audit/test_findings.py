"""Each finding rule on a real image made to trigger it, and silence on good builds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nexlab.audit import audit
from nexlab.audit.findings import Severity
from nexlab.run import run


def codes(result) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {f.code: f for f in result.findings}


def test_good_debian_build_has_nothing_above_low(debian_audit) -> None:  # type: ignore[no-untyped-def]
    above_low = [f for f in debian_audit.findings if f.severity.rank > Severity.LOW.rank]
    assert above_low == []
    # Debian's own setuid helpers are still listed, so nobody forgets they exist.
    assert "/usr/bin/passwd" in codes(debian_audit)["setuid"].paths  # type: ignore[attr-defined]
    assert debian_audit.fsck.clean is True


def test_alpine_build_with_busybox_init_has_nothing_above_low(alpine_rootfs: Path) -> None:
    result = audit(alpine_rootfs)
    above_low = {f.code for f in result.findings if f.severity.rank > Severity.LOW.rank}
    # No OpenRC in the minirootfs: the agent runs from busybox init's inittab, with a ttyS0 getty.
    assert above_low == set()


def test_alpine_image_with_only_an_openrc_script_is_flagged(alpine_rootfs: Path, tmp_path: Path) -> None:
    # What builds made before busybox init support: an OpenRC script, no OpenRC, no inittab entry.
    image = tmp_path / "openrc-script.ext4"
    shutil.copyfile(alpine_rootfs, image)
    script, inittab = tmp_path / "agent", tmp_path / "inittab"
    script.write_text("#!/sbin/openrc-run\ncommand=/usr/local/bin/agent\n")
    inittab.write_text("::sysinit:/sbin/openrc sysinit\nttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n")
    for request in ("mkdir /etc/init.d", f"write {script} /etc/init.d/agent", "rm /etc/inittab",
                    f"write {inittab} /etc/inittab"):  # fmt: skip
        run(["debugfs", "-w", "-R", request, str(image)])
    result = audit(image)
    above_low = {f.code for f in result.findings if f.severity.rank > Severity.LOW.rank}
    assert "service-interpreter-missing" in above_low
    missing = next(f for f in result.findings if f.code == "service-interpreter-missing")
    assert "/sbin/openrc-run" in missing.paths


@pytest.mark.parametrize(
    ("code", "severity", "path"),
    [
        ("root-password-known", "critical", "/etc/shadow"),  # chpasswd root:root (yescrypt)
        ("boot-writable", "critical", "/etc/init.d/agent"),
        ("agent-not-executable", "critical", "/usr/local/bin/agent"),
        ("service-not-enabled", "high", "/etc/init.d/agent"),
        ("nex-user", "high", "/etc/passwd"),
        ("tmp-mode", "high", "/tmp"),
        ("nex-home", "medium", "/home/nex"),
        ("world-writable", "medium", "/var/lib/drop"),
        ("setuid", "low", "/usr/local/bin/suid-tool"),
        ("fsck-errors", "high", None),
        ("needs-recovery", "medium", None),
    ],
)
def test_bad_build_triggers_rule(bad_audit, code: str, severity: str, path: str | None) -> None:  # type: ignore[no-untyped-def]
    found = codes(bad_audit)
    assert code in found, f"{code} not in {sorted(found)}"
    finding = found[code]
    assert finding.severity == severity  # type: ignore[attr-defined]
    assert finding.fix  # type: ignore[attr-defined]
    if path:
        assert path in finding.paths  # type: ignore[attr-defined]


def test_world_writable_lists_files_and_skips_sticky_dirs(bad_audit) -> None:  # type: ignore[no-untyped-def]
    paths = codes(bad_audit)["world-writable"].paths  # type: ignore[attr-defined]
    assert "/etc/world.conf" in paths
    assert "/var/tmp" not in paths  # 1777: sticky, fine


def test_bare_image_misses_everything_nex_needs(bare_image: Path) -> None:
    found = codes(audit(bare_image))
    for code in (
        "agent-missing",
        "service-missing",
        "nex-user",
        "nex-home",
        "tmp-mode",
        "no-serial-getty",
        "root-password-empty",
        "small-inodes",
    ):
        assert code in found, f"{code} not in {sorted(found)}"
    assert found["agent-missing"].severity == Severity.CRITICAL  # type: ignore[attr-defined]
    assert found["root-password-empty"].severity == Severity.CRITICAL  # type: ignore[attr-defined]
    assert "fsck-errors" not in found


def test_findings_are_sorted_worst_first(bad_audit) -> None:  # type: ignore[no-untyped-def]
    ranks = [f.severity.rank for f in bad_audit.findings]
    assert ranks == sorted(ranks, reverse=True)
    assert bad_audit.worst() == Severity.CRITICAL


def test_missing_e2fsck_degrades_to_a_note(bare_image: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A PATH without e2fsprogs: the audit still runs and says what to install.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("nexlab.run._SBIN", str(tmp_path))
    result = audit(bare_image)
    assert result.fsck.clean is None
    assert "e2fsprogs" in result.fsck.note
    skipped = codes(result)["fsck-skipped"]
    assert skipped.severity == Severity.INFO  # type: ignore[attr-defined]
