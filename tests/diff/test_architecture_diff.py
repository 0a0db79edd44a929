"""``nexlab diff`` of an amd64 and an arm64 image says the CPU differs and explains each rebuilt binary by it."""

from __future__ import annotations

from pathlib import Path

from nexlab.diff import diff
from tests.audit.test_arch import _image


def test_images_for_two_cpus_differ_by_architecture(tmp_path: Path) -> None:
    a = _image(tmp_path, "a", "amd64", "amd64")
    b = _image(tmp_path, "b", "arm64", "arm64")
    result = diff(a, b, packages=False)
    fields = {f.field: f for f in result.filesystem}
    assert (fields["architecture"].a, fields["architecture"].b) == ("amd64", "arm64")
    binaries = {c.path: c.cause for c in result.change_records if c.change == "modified" and c.type == "file"}
    assert binaries.keys() >= {"/sbin/init", "/bin/dash", "/usr/local/bin/agent"}
    assert {binaries[p] for p in ("/sbin/init", "/bin/dash", "/usr/local/bin/agent")} == {"architecture"}
    # The dpkg status file differs too, but it is no binary: the architecture does not explain it.
    status = next(c for c in result.change_records if c.path == "/var/lib/dpkg/status")
    assert status.cause != "architecture"
    assert "architecture" in result.causes


def test_images_for_one_cpu_name_no_architecture_change(tmp_path: Path) -> None:
    a = _image(tmp_path, "a", "amd64", "amd64")
    b = _image(tmp_path, "b", "amd64", "arm64")  # only the agent is foreign: the image's CPU is the same
    result = diff(a, b, packages=False)
    assert "architecture" not in {f.field for f in result.filesystem}
    assert "architecture" not in result.causes
