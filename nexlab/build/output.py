"""Writing the final image: temporary name in the target directory, rename at the end."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nexlab.errors import InputError


@contextlib.contextmanager
def staged_output(output: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``output``; it replaces ``output`` only if the block succeeds.

    A ``.gz`` output is gzipped from the temporary image (like ``nex rootfs``).
    Whatever happens, no temporary file is left behind.
    """
    directory = output.parent
    if not directory.is_dir():
        raise InputError(f"output directory {directory} does not exist")
    if output.is_dir():
        raise InputError(f"output {output} is a directory")
    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".nexlab-tmp", dir=directory)
    os.close(fd)
    os.unlink(name)  # allocate() creates it afresh and refuses to reuse a file
    staged = Path(name)
    try:
        yield staged
        if output.suffix == ".gz":
            compressed = staged.with_suffix(".gz-tmp")
            try:
                # mtime=0 and no file name: the same image always gzips to the same bytes.
                with (
                    staged.open("rb") as source,
                    compressed.open("wb") as raw,
                    gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as sink,
                ):
                    shutil.copyfileobj(source, sink, 1024 * 1024)
                os.replace(compressed, output)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    compressed.unlink()
        else:
            os.replace(staged, output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
