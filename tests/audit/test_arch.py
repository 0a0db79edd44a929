"""The image's architecture from ELF headers and the package database, and the foreign-binary rules.

Images are ``mkfs.ext4 -d`` from staging trees holding real, runnable static ELF
executables (``exit(0)``, assembled below for x86-64 and AArch64), no Docker needed.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from nexlab.audit import audit
from nexlab.image import open_image
from nexlab.image.elf import elf_machine, image_architecture
from nexlab.report.audit_json import audit_json_dict
from nexlab.run import run
from tests.conftest import require

#: exit(0): x86-64 `mov eax,60; xor edi,edi; syscall`, AArch64 `mov x8,#93; mov x0,#0; svc #0`.
CODE = {
    "amd64": (62, bytes.fromhex("b83c00000031ff0f05")),
    "arm64": (183, bytes.fromhex("a80b80d2000080d2010000d4")),
}
BASE = 0x400000


def static_exit(arch: str) -> bytes:
    """A minimal static ELF64 executable for ``arch`` that exits 0 (one PT_LOAD segment)."""
    machine, code = CODE[arch]
    entry = BASE + 64 + 56
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, entry, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    total = 64 + 56 + len(code)
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, total, total, 0x1000)
    return header + segment + code


def _tree(root: Path, image_arch: str, agent_arch: str, extra: dict[str, str] | None = None) -> None:
    for path in ("bin", "sbin", "usr/local/bin", "etc/init.d", "var/lib/dpkg", "lib"):
        (root / path).mkdir(parents=True, exist_ok=True)
    binaries = {"sbin/init": image_arch, "bin/dash": image_arch, "sbin/openrc-run": image_arch}
    binaries["usr/local/bin/agent"] = agent_arch
    binaries.update(extra or {})
    for path, arch in binaries.items():
        (root / path).write_bytes(static_exit(arch))
        (root / path).chmod(0o755)
    (root / "bin/sh").symlink_to("dash")
    (root / "var/lib/dpkg/status").write_text(
        f"Package: dash\nStatus: install ok installed\nArchitecture: {image_arch}\nVersion: 1\n\n"
        "Package: base-files\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n"
    )


def _image(tmp_path: Path, name: str, image_arch: str, agent_arch: str, extra: dict[str, str] | None = None) -> Path:
    require(shutil.which("mkfs.ext4") is not None, "mkfs.ext4 (e2fsprogs)")
    root = tmp_path / f"{name}-tree"
    _tree(root, image_arch, agent_arch, extra)
    image = tmp_path / f"{name}.ext4"
    run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(image), "8M"])
    return image


def test_elf_machine_reads_real_headers() -> None:
    assert elf_machine(static_exit("amd64")) == "amd64"
    assert elf_machine(static_exit("arm64")) == "arm64"
    assert elf_machine(Path("/bin/sh").resolve().read_bytes()[:64]) == "amd64"
    assert elf_machine(b"#!/bin/sh\n" + bytes(20)) is None
    assert elf_machine(b"\x7fELF") is None  # too short to say


@pytest.mark.skipif(shutil.which("qemu-aarch64-static") is None, reason="needs qemu-user-static")
def test_the_crafted_arm64_program_really_runs(tmp_path: Path) -> None:
    program = tmp_path / "exit0"
    program.write_bytes(static_exit("arm64"))
    program.chmod(0o755)
    run(["qemu-aarch64-static", str(program)])


@pytest.mark.parametrize(("image_arch", "agent_arch"), [("amd64", "arm64"), ("arm64", "amd64")])
def test_agent_of_the_other_machine_is_high(tmp_path: Path, image_arch: str, agent_arch: str) -> None:
    image = _image(tmp_path, "mismatch", image_arch, agent_arch)
    with open_image(image) as fs:
        arch = image_architecture(fs)
    assert arch.name == image_arch and not arch.mixed
    assert arch.binaries["/usr/local/bin/agent"] == agent_arch
    assert arch.binaries["/bin/sh"] == image_arch  # through the symlink
    assert arch.packages == (image_arch,)
    report = audit(image, fsck_check=False)
    assert report.architecture.name == image_arch
    assert image_arch in report.summary()
    codes = {f.code: f for f in report.findings}
    assert codes["agent-foreign-arch"].severity.value == "high"
    assert codes["agent-foreign-arch"].paths == ("/usr/local/bin/agent",)
    assert "boot-foreign-arch" not in codes and "foreign-binary" not in codes
    doc = audit_json_dict(report)
    assert doc["architecture"]["name"] == image_arch
    assert doc["architecture"]["binaries"]["/usr/local/bin/agent"] == agent_arch


def test_matching_image_has_no_architecture_finding(tmp_path: Path) -> None:
    report = audit(_image(tmp_path, "arm64", "arm64", "arm64"), fsck_check=False)
    assert report.architecture.name == "arm64"
    assert not {"agent-foreign-arch", "boot-foreign-arch", "foreign-binary"} & {f.code for f in report.findings}


def test_mixed_boot_path_and_foreign_tool(tmp_path: Path) -> None:
    extra = {"sbin/openrc-run": "amd64", "usr/local/bin/tool": "amd64", "lib/ld-linux-aarch64.so.1": "arm64"}
    report = audit(_image(tmp_path, "mixed", "arm64", "arm64", extra), fsck_check=False)
    arch = report.architecture
    assert arch.mixed and arch.main == "arm64"
    assert "mixed" in arch.summary() and "amd64" in arch.summary()
    codes = {f.code: f for f in report.findings}
    assert codes["boot-foreign-arch"].severity.value == "high"
    assert codes["boot-foreign-arch"].paths == ("/sbin/openrc-run",)
    assert codes["foreign-binary"].severity.value == "low"
    assert codes["foreign-binary"].paths == ("/usr/local/bin/tool",)
    assert "agent-foreign-arch" not in codes
