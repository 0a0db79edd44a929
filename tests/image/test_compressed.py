"""Compressed images (.gz, .zst) read by audit, diff and mtree through a sparse temporary copy.

Real images from ``mke2fs -d`` (no root), compressed with the same libraries
``nexlab build`` uses; other formats and broken archives must fail with one line.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import shutil
from pathlib import Path

import pytest
import zstandard

import nexlab
from nexlab.diff import diff
from nexlab.errors import ImageFormatError, InputError
from nexlab.image.compressed import plain_image
from nexlab.run import run
from tests.conftest import nexlab_cli, require, scratch
from tests.recorder import Recorder

SIZE_MIB = 64


@pytest.fixture(scope="module")
def plain(module_tmp: Path) -> Path:
    require(shutil.which("mke2fs") is not None, "mke2fs (e2fsprogs)")
    work = scratch(module_tmp, "compressed")
    tree = work / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text("ID=compressed\n")
    (tree / "data").write_bytes(os.urandom(3 << 20))
    (tree / "tmp").mkdir(mode=0o1777)
    image = work / "rootfs.ext4"
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(image), f"{SIZE_MIB}M"])
    return image


@pytest.fixture(scope="module")
def packed(plain: Path) -> dict[str, Path]:
    gz = plain.with_name("rootfs.ext4.gz")
    with plain.open("rb") as source, gzip.GzipFile(gz, "wb", mtime=0) as sink:
        shutil.copyfileobj(source, sink, 1 << 20)
    zst = plain.with_name("rootfs.ext4.zst")
    with plain.open("rb") as source, zst.open("wb") as sink:
        zstandard.ZstdCompressor(level=3).copy_stream(source, sink)
    return {"gz": gz, "zst": zst}


def _inventory(report: nexlab.audit.Audit) -> list[tuple[str, str | None, int]]:
    return [(f.path, f.sha256, f.size) for f in report.files]


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_audit_reads_compressed_images(kind: str, plain: Path, packed: dict[str, Path]) -> None:
    expected = nexlab.audit(plain)
    got = nexlab.audit(packed[kind])
    assert got.image == packed[kind]
    assert _inventory(got) == _inventory(expected)
    assert got.fsck.clean is True
    assert got.filesystem.image_bytes == SIZE_MIB << 20
    assert [f.code for f in got.findings] == [f.code for f in expected.findings]


def test_cli_audit_and_diff_take_what_build_writes(plain: Path, packed: dict[str, Path]) -> None:
    done = nexlab_cli("audit", str(packed["gz"]), "--json", "--no-hash")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["image"].endswith("rootfs.ext4.gz")
    # The decompression is the one step audit shows (on stderr); a plain image shows none.
    assert "==> decompress: gzip: rootfs.ext4.gz to a sparse temporary file" in done.stderr
    assert "decompress done in" in done.stderr
    assert nexlab_cli("audit", str(plain), "--json", "--no-hash").stderr == ""
    done = nexlab_cli("diff", "--json", str(packed["gz"]), str(packed["zst"]))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["identical_bytes"] is True and data["identical_content"] is True
    assert diff(plain, packed["zst"]).identical_bytes


def test_copy_is_sparse_reported_and_removed(plain: Path, packed: dict[str, Path]) -> None:
    progress = Recorder()
    with plain_image(packed["zst"], progress=progress) as copy:
        assert copy != packed["zst"] and copy.read_bytes() == plain.read_bytes()
        # A 64 MiB filesystem holding 3 MiB: the zeros were seeks, not writes.
        assert copy.stat().st_blocks * 512 < 16 << 20
        scratch = copy.parent
    assert not scratch.exists()
    assert progress.steps == ["decompress"] and progress.fractions[-1] == 1.0
    with pytest.raises(RuntimeError), plain_image(packed["gz"]) as copy:
        scratch = copy.parent
        raise RuntimeError("interrupted")
    assert not scratch.exists()
    with plain_image(plain) as same:
        assert same == plain
    # Nowhere to decompress to (even root cannot make a directory in /proc): one typed error.
    with (
        pytest.raises(InputError, match="cannot make a temporary directory in /proc"),
        plain_image(packed["gz"], workdir="/proc"),
    ):
        pass


def test_multi_frame_zstd_and_multi_member_gzip(plain: Path, tmp_path: Path) -> None:
    # What parallel compressors (pzstd, pigz --independent, cat a.gz b.gz) write.
    data = plain.read_bytes()
    half = len(data) // 2
    zst = tmp_path / "frames.ext4.zst"
    compressor = zstandard.ZstdCompressor()
    zst.write_bytes(compressor.compress(data[:half]) + compressor.compress(data[half:]))
    gz = tmp_path / "members.ext4.gz"
    gz.write_bytes(gzip.compress(data[:half], mtime=0) + gzip.compress(data[half:], mtime=0))
    for packed in (zst, gz):
        with plain_image(packed) as copy:
            assert copy.read_bytes() == data


def test_output_stops_at_the_filesystem_size(plain: Path, tmp_path: Path) -> None:
    # 64 MiB of filesystem, then 512 MiB of zeros (a cheap bomb): only the filesystem is written.
    bomb = tmp_path / "bomb.ext4.gz"
    with gzip.GzipFile(bomb, "wb", mtime=0) as sink:
        sink.write(plain.read_bytes())
        zeros = bytes(1 << 20)
        for _ in range(512):
            sink.write(zeros)
    with plain_image(bomb) as copy:
        assert copy.stat().st_size == SIZE_MIB << 20


def test_unreadable_compression_is_refused_with_one_line(plain: Path, packed: dict[str, Path], tmp_path: Path) -> None:
    xz = tmp_path / "rootfs.ext4.xz"
    xz.write_bytes(lzma.compress(plain.read_bytes()[: 1 << 20]))
    fake = tmp_path / "rootfs.ext4.gz"
    fake.write_bytes(b"not gzip at all" * 100)
    cut = tmp_path / "cut.ext4.zst"
    cut.write_bytes(packed["zst"].read_bytes()[:200_000])
    cut_gz = tmp_path / "cut.ext4.gz"
    cut_gz.write_bytes(packed["gz"].read_bytes()[:200_000])
    not_ext4 = tmp_path / "text.gz"
    with gzip.open(not_ext4, "wb") as sink:
        sink.write(b"hello\n" * 1000)
    cases = {
        xz: "xz-compressed",
        fake: "named like a gzip file",
        cut: "truncated",
        cut_gz: "cannot decompress (gzip)",
        not_ext4: "not an ext2/3/4 image",
    }
    for path, message in cases.items():
        for command in (("audit", str(path)), ("diff", str(path), str(plain))):
            done = nexlab_cli(*command)
            assert done.returncode == 2, (command, done.stdout, done.stderr)
            lines = done.stderr.strip().splitlines()
            assert "Traceback" not in done.stderr and message in lines[-1], (command, done.stderr)
            # Refused up front, in one line; a cut archive shows only after the decompression started.
            kind = "zstd" if path.suffix == ".zst" else "gzip"
            late = [f"==> decompress: {kind}: {path.name} to a sparse temporary file"]
            assert lines[:-1] == (late if path in (cut, cut_gz) else [])
    with pytest.raises(InputError):
        nexlab.audit(xz)
    with pytest.raises(ImageFormatError):
        nexlab.audit(cut)
