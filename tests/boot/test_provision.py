"""The arm64 initramfs nexlab writes: a newc cpio the kernel (and libarchive) reads, modules in order."""

from __future__ import annotations

import gzip
from pathlib import Path

import libarchive

from nexlab.boot.provision import newc


def test_newc_is_read_back_with_parents_and_modes(tmp_path: Path) -> None:
    archive = tmp_path / "initrd.cpio"
    archive.write_bytes(
        gzip.compress(newc([("init", 0o100755, b"#!/bin/sh\n"), ("lib/modules/a.ko", 0o100644, b"x" * 5)]))
    )
    found = {}
    with libarchive.file_reader(str(archive)) as entries:
        for entry in entries:
            found[entry.pathname] = (entry.mode, b"".join(entry.get_blocks()))
    assert found == {
        "init": (0o100755, b"#!/bin/sh\n"),
        "lib": (0o040755, b""),
        "lib/modules": (0o040755, b""),
        "lib/modules/a.ko": (0o100644, b"xxxxx"),
    }


def test_newc_is_deterministic() -> None:
    files = [("init", 0o100755, b"a"), ("bin/busybox", 0o100755, b"b")]
    assert newc(files) == newc(files)
