"""``nexlab build --json`` and ``nexlab boot --json``: one JSON object on stdout that a CI script reads.

A real build (Docker, loop mount) and a real boot (QEMU), through the installed
command; progress stays on stderr, so stdout parses as JSON as it is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.conftest import SAMPLE_AGENT, nexlab_cli


def test_build_and_boot_print_their_json_contract(debian_base: str, qemu_kernel: object, tmp_path: Path) -> None:
    output = tmp_path / "rootfs.ext4"
    built = nexlab_cli("build", "--agent", str(SAMPLE_AGENT), "--image", debian_base, "--size", "200MiB",
                       "-o", str(output), "--json")  # fmt: skip
    assert built.returncode == 0, built.stderr
    data = json.loads(built.stdout)
    assert data["version"] == 1 and data["boot"] is None
    assert data["output"] == str(output) and data["size"] == output.stat().st_size == 200 << 20
    assert data["sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()
    assert data["reproducible"] is False and data["manifest"] is None
    assert [s["step"] for s in data["steps"]] == ["allocate", "mkfs", "populate", "unmount"]
    assert "==> populate" in built.stderr  # the progress went to stderr

    # --expect decides at the first matching console line: a few seconds, even under TCG.
    booted = nexlab_cli("boot", str(output), "--json", "--expect", r"Run /init as init process", "--timeout", "120")
    assert booted.returncode == 0, booted.stderr
    boot = json.loads(booted.stdout)
    assert boot["version"] == 1 and boot["ok"] is True and boot["outcome"] == "agent_started"
    assert boot["image"] == str(output) and boot["accel"] in ("kvm", "tcg")
    assert 0 < boot["seconds_to_agent"] <= boot["seconds"]
    assert "Run /init as init process" in boot["reason"] and boot["last_lines"]

    failed = nexlab_cli("boot", str(output), "--json", "--expect", "never printed", "--timeout", "1")
    assert failed.returncode == 1, failed.stderr
    verdict = json.loads(failed.stdout)
    assert verdict["ok"] is False and verdict["outcome"] == "timeout" and verdict["seconds_to_agent"] is None
