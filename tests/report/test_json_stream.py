"""``--json`` streams: the chunks join to exactly ``json.dumps`` of the contract's dict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nexlab.audit import Audit, audit
from nexlab.report import audit_json as module
from nexlab.run import run
from tests.conftest import require


def test_chunks_are_the_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _audit_of_small_image(tmp_path, 25, 'file-{:02d}\n"é', b"x")
    monkeypatch.setattr(module, "RECORDS_PER_CHUNK", 7)  # several chunks of files
    for indent in (None, 1, 2):
        chunks = list(module.iter_audit_json(result, indent=indent))
        assert len(chunks) > 4
        expected = json.dumps(module.audit_json_dict(result), sort_keys=True, indent=indent, ensure_ascii=True)
        assert "".join(chunks) == expected


def test_json_file_is_written_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--json-file`` (``report.write``) streams the chunks into the file: the same bytes as
    ``audit_json_file``, the file written piece by piece, never the whole document at once."""
    from nexlab import report
    from nexlab.builder import output

    result = _audit_of_small_image(tmp_path, 40, "file-{:02d}", b"y")
    monkeypatch.setattr(module, "RECORDS_PER_CHUNK", 5)
    expected = module.audit_json_file(result).encode()
    sizes: list[int] = []
    real_write = output._write

    def counting(path: Path, content: object) -> None:
        if ".audit.json." not in path.name:
            real_write(path, content)  # type: ignore[arg-type]
            return
        assert not isinstance(content, bytes), "the whole document was handed over at once"
        pieces = [bytes(chunk) for chunk in content]  # type: ignore[attr-defined]
        sizes.extend(len(piece) for piece in pieces)
        real_write(path, iter(pieces))

    monkeypatch.setattr(output, "_write", counting)
    out = tmp_path / "out" / "audit.json"
    md = tmp_path / "audit.md"
    assert report.write(result, {"markdown": md, "json": out}) == [md, out]
    assert out.read_bytes() == expected and md.read_text().strip()
    assert len(sizes) > 8 and max(sizes) < len(expected) // 4


def _audit_of_small_image(tmp_path: Path, count: int, name: str, fill: bytes) -> Audit:
    """The audit of an 8 MiB ext4 made by ``mkfs.ext4 -d``: ``count`` files in /etc, file i
    named ``name.format(i)`` and holding i bytes of ``fill``."""
    require(shutil.which("mkfs.ext4") is not None, "mkfs.ext4 (e2fsprogs)")
    staging = tmp_path / "root"
    (staging / "etc").mkdir(parents=True)
    for i in range(count):
        (staging / "etc" / name.format(i)).write_bytes(fill * i)
    image = tmp_path / "small.ext4"
    run(["mkfs.ext4", "-q", "-F", "-d", str(staging), str(image), "8M"])
    return audit(image, fsck_check=False)
