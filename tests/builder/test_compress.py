"""The compress step of a .gz/.zst output: a bar in bytes, and both digests from the one pass."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest

from nexlab.builder import output
from nexlab.builder.output import Written, staged_output
from tests.recorder import Recorder


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compress_is_a_step_with_a_bar_and_both_digests(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output, "REPORT", 0.0)  # every chunk reported: the bar's steps are visible here
    image = os.urandom(3 * 2**20) + bytes(5 * 2**20)  # 8 MiB: some noise, mostly zeros, as an ext4 image
    target = tmp_path / f"rootfs.ext4{suffix}"
    recorder, written = Recorder(), Written()
    with staged_output(target, progress=recorder, written=written) as staged:
        staged.write_bytes(image)
    made = written.compressed
    assert made is not None and made.step == "compress" and made.format == ("gzip" if suffix == ".gz" else "zstd")
    assert recorder.steps == ["compress"] and recorder.finished == ["compress"]
    bar = [done for step, done, _ in recorder.bar if step == "compress"]
    assert len(bar) >= 8 and bar == sorted(bar) and bar[-1] == 1.0  # one report per MiB read, then the end
    assert made.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
    assert made.image_sha256 == hashlib.sha256(image).hexdigest()
    assert made.image_bytes == len(image) and made.compressed_bytes == target.stat().st_size
    if suffix == ".gz":
        assert gzip.decompress(target.read_bytes()) == image
    else:
        import zstandard

        assert zstandard.ZstdDecompressor().decompress(target.read_bytes()) == image
    assert [p.name for p in tmp_path.iterdir()] == [target.name], "no temporary left"


def test_the_same_image_compresses_to_the_same_bytes(tmp_path: Path) -> None:
    image = tmp_path / "image"
    image.write_bytes(os.urandom(2**20) + bytes(2**20))
    digests = set()
    for name in ("a.ext4.zst", "b.ext4.zst"):
        (tmp_path / name).write_bytes(b"")
        digests.add(output.compress(image, tmp_path / name, ".zst").sha256)
    assert len(digests) == 1
