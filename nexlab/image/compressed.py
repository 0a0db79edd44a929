"""Compressed images (``rootfs.ext4.gz``, ``.zst``) for the commands that read images.

``nexlab build -o rootfs.ext4.gz`` writes a compressed image; audit, diff and
boot must take it back. The reader needs random access (it mmaps the image),
so the image is decompressed once into a **sparse** temporary file: runs of
zeros (most of a fresh filesystem) are skipped with a seek rather than written,
so a 1 GiB image that holds 150 MiB costs about 150 MiB of disk. The format is
recognised by its magic bytes, not its name; a format nexlab cannot read (xz,
bzip2, lz4…) is refused up front with one line, before any work starts.

A hostile archive must not fill the disk: output stops at the size the
filesystem's own superblock declares (nothing past it is part of the
filesystem), and a stream that does not start like an ext2/3/4 image stops at
its first block.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import zstandard

from nexlab import tempdirs
from nexlab.errors import ImageFormatError, InputError
from nexlab.progress import Progress, or_logging

#: magic bytes -> format nexlab decompresses
READABLE = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
#: magic bytes -> formats recognised only to be refused with a clear message
REFUSED = {
    b"\xfd7zXZ\x00": "xz",
    b"BZh": "bzip2",
    b"\x04\x22\x4d\x18": "lz4",
    b"\x5d\x00\x00": "lzma",
    b"PK\x03\x04": "zip",
    b"7z\xbc\xaf\x27\x1c": "7z",
}
#: Names that promise compression: a file so named must really be in a readable format.
SUFFIXES = {".gz": "gzip", ".zst": "zstd", ".xz": "xz", ".bz2": "bzip2", ".lz4": "lz4", ".lzma": "lzma"}

CHUNK = 1 << 20
_SB = struct.Struct("<II12xII")  # at 1024: inodes_count, blocks_lo, first_data_block, log_block_size
_ZERO_BLOCK = bytes(4096)


def compression_of(path: Path) -> str | None:
    """The compression of the file at ``path`` ("gzip", "zstd"), None for a plain file.

    ``InputError`` for a compression nexlab cannot read, or a name ending in
    ``.gz``/``.zst``… whose content is not in that format.
    """
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror}") from exc
    for magic, name in READABLE.items():
        if head.startswith(magic):
            return name
    for magic, name in REFUSED.items():
        if head.startswith(magic):
            raise InputError(
                f"{path} is {name}-compressed; nexlab reads plain, gzip and zstd images",
                hint=f"decompress it first ({name} -d)" if name in ("xz", "bzip2", "lz4", "lzma") else None,
            )
    promised = SUFFIXES.get(path.suffix)
    if promised:
        raise InputError(f"{path} is named like a {promised} file but is not one")
    return None


def _reader(raw: IO[bytes], kind: str) -> gzip.GzipFile | zstandard.ZstdDecompressionReader:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    # Parallel compressors (pzstd, zstd -T with some options) write several frames: read them all.
    return zstandard.ZstdDecompressor().stream_reader(raw, closefd=False, read_across_frames=True)


def _read_head(stream: gzip.GzipFile | zstandard.ZstdDecompressionReader) -> bytes:
    """The first 4 KiB of the decompressed stream (a read may return less than asked)."""
    head = b""
    while len(head) < 4096:
        more = stream.read(4096 - len(head))
        if not more:
            break
        head += more
    return head


def _filesystem_bytes(head: bytes, path: Path) -> int:
    """The filesystem size the decompressed superblock declares."""
    if len(head) < 2048 or head[1080:1082] != b"\x53\xef":
        raise ImageFormatError(f"{path} decompresses to something that is not an ext2/3/4 image")
    _inodes, blocks_lo, _first, log_block_size = _SB.unpack_from(head, 1024)
    if log_block_size > 6:
        raise ImageFormatError(f"{path}: corrupt superblock: block size 2^{10 + log_block_size}")
    incompat = struct.unpack_from("<I", head, 1024 + 0x60)[0]
    blocks_hi = struct.unpack_from("<I", head, 1024 + 0x150)[0] if incompat & 0x80 else 0
    return (blocks_lo | (blocks_hi << 32)) * (1024 << log_block_size)


def decompress(source: Path, target: Path, kind: str, progress: Progress | None = None) -> int:
    """Decompress ``source`` into the sparse file ``target``; returns the bytes of the image."""
    progress = or_logging(progress)
    compressed = max(source.stat().st_size, 1)
    written = 0
    try:
        with open(source, "rb") as raw, _reader(raw, kind) as stream, open(target, "wb") as out:
            head = _read_head(stream)
            limit = _filesystem_bytes(head, source)
            pending = head
            last = -1.0
            while pending:
                pending = pending[: max(0, limit - written)]
                for offset in range(0, len(pending), len(_ZERO_BLOCK)):
                    block = pending[offset : offset + len(_ZERO_BLOCK)]
                    if block.count(0) == len(block):
                        out.seek(len(block), os.SEEK_CUR)  # a hole: no disk used
                    else:
                        out.write(block)
                written += len(pending)
                if written >= limit:
                    break
                # How far through the compressed file we are: the only total known in advance.
                done = raw.tell() / compressed
                if done - last >= 0.01:
                    progress.fraction(min(done, 1.0), f"decompressing {source.name}")
                    last = done
                pending = stream.read(CHUNK)
            out.truncate(written)
        if written < limit:
            # gzip says so itself; a zstd stream cut between blocks just ends.
            raise ImageFormatError(
                f"{source}: the compressed image ends after {written} bytes but its filesystem spans {limit}: "
                "truncated (an interrupted download or copy?)"
            )
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise ImageFormatError(f"{source}: cannot decompress ({kind}): {exc}") from exc
    progress.fraction(1.0, f"decompressed {source.name}")
    return written


@contextlib.contextmanager
def plain_image(
    path: str | os.PathLike[str], *, progress: Progress | None = None, workdir: str | os.PathLike[str] | None = None
) -> Iterator[Path]:
    """``path`` itself when it is a plain image, else a decompressed temporary copy.

    The copy is sparse, lives in ``workdir`` (default: the run's temporary base,
    ``nexlab.tempdirs``) and is deleted when the block ends, whatever happens in
    it (unless ``--debug`` keeps the base).
    """
    source = Path(path)
    kind = compression_of(source)
    if kind is None:
        yield source
        return
    # The first block is checked before anything is announced or written, so a broken or
    # foreign archive fails at once, with one line.
    try:
        with open(source, "rb") as raw, _reader(raw, kind) as stream:
            _filesystem_bytes(_read_head(stream), source)
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise ImageFormatError(f"{source}: cannot decompress ({kind}): {exc}") from exc
    try:
        made = (
            tempdirs.mkdtemp("image")
            if workdir is None
            else Path(tempfile.mkdtemp(prefix=tempdirs.name("image") + "-", dir=workdir))
        )
    except OSError as exc:
        where = workdir or tempdirs.parent()
        raise InputError(
            f"cannot make a temporary directory in {where} to decompress {source.name}: {exc.strerror}",
            hint="set TMPDIR to a writable directory with room for the image",
        ) from exc
    progress = or_logging(progress)
    with tempdirs.removing(made, keepable=workdir is None) as scratch:
        with progress.step("decompress", f"{kind}: {source.name} to a sparse temporary file") as step:
            name = source.stem if source.suffix in SUFFIXES else source.name
            target = Path(scratch, name or "image")
            step.done(decompress(source, target, kind, progress))
        yield target
        # The temporary directory (and the copy) goes with the block, even on an exception.
