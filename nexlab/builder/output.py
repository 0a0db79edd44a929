"""Writing the final image: temporary name in the target directory, rename at the end.

No output is ever opened by a predictable name: every file is made with
``mkstemp`` (``O_CREAT|O_EXCL``, a random name) in the directory it ends up in,
then renamed over the target, so a symlink planted in a writable output
directory (or raced in beside a temporary) is replaced, never followed. The
renames run with SIGINT and SIGTERM held back, and what was renamed into place
is remembered, so the CLI can tell a user whose Ctrl-C came too late that the
output is complete.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from nexlab.errors import HostError, InputError
from nexlab.host import owned, signals
from nexlab.run import run

#: Suffixes written compressed, and suffixes of compressors nexlab does not write.
COMPRESSED = (".gz", ".zst")
_UNSUPPORTED = (".xz", ".bz2", ".lz4", ".lzma", ".lz", ".zip", ".7z", ".br")

#: Files renamed into place by this process (absolute paths).
_committed: set[Path] = set()

Sidecars = Callable[[Path], Mapping[Path, bytes]]


def committed(path: str | os.PathLike[str]) -> bool:
    """True once ``path`` was replaced by a complete output in this process."""
    return Path(path).absolute() in _committed


def check_output(output: Path) -> None:
    """Refuse, before anything is built, an output nexlab cannot write."""
    directory = output.parent
    if not directory.is_dir():
        raise InputError(f"output directory {directory} does not exist")
    if output.is_dir():
        raise InputError(f"output {output} is a directory")
    suffix = output.suffix.lower()
    if suffix in _UNSUPPORTED:
        raise InputError(
            f"cannot write {suffix} images: {output.name}",
            hint="name the output .ext4, .ext4.gz or .ext4.zst",
        )


_FREE_HINT = "free some space there or use -o elsewhere"


def host_free(directory: Path) -> int:
    """Bytes this process may still write on the file system holding ``directory``."""
    stats = os.statvfs(directory)
    return (stats.f_bfree if os.geteuid() == 0 else stats.f_bavail) * stats.f_frsize


def host_full(image: Path) -> HostError | None:
    """When writing the sparse ``image`` failed for want of space: a ``HostError`` if the host's
    file system, not the image, is what ran out (it cannot hold the rest of the image)."""
    try:
        info = image.stat()
        free = host_free(image.parent)
    except OSError:
        return None
    missing = info.st_size - info.st_blocks * 512
    if free >= missing:
        return None
    return HostError(
        f"the host file system holding {image.parent} is full ({free // 2**20} MiB free; "
        f"the image may need {missing // 2**20} MiB more)",
        hint=_FREE_HINT,
    )


def host_error(exc: OSError, what: str, where: Path) -> HostError | InputError:
    """A one-line error for an ``OSError`` the host caused (disk full, read-only, no permission)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return HostError(f"no space left on the host while {what} in {where}", hint=_FREE_HINT)
    if exc.errno == errno.EROFS:
        return InputError(f"cannot write in {where}: read-only file system", hint="use -o in a writable directory")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return InputError(f"cannot write in {where}: permission denied")
    return HostError(f"{what} in {where} failed: {exc.strerror or exc}")


def temporary_file(directory: Path, name: str) -> Path:
    """A new, empty file with a random name beside ``name`` in ``directory``, carrying our PID."""
    try:
        fd, path = tempfile.mkstemp(prefix=f".{name}.{owned.tag()}.", suffix=".nexlab-tmp", dir=directory)
    except OSError as exc:
        raise host_error(exc, "creating a temporary file", directory) from None
    try:
        # mkstemp makes 0600; an output gets the mode any new file of the user's would get.
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(path)


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for an instant, for all threads)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


@contextlib.contextmanager
def staged_output(output: Path, *, sidecars: Sidecars | None = None) -> Iterator[Path]:
    """Yield a new, empty temporary file beside ``output``; it replaces ``output`` only if the
    block succeeds.

    A ``.gz`` or ``.zst`` output is compressed from the temporary image.
    ``sidecars(final)`` may return more files to write (a manifest); they are
    written to temporaries too and renamed right after the image, together.
    Whatever happens, no temporary file is left behind.
    """
    check_output(output)
    directory = output.parent
    temporaries: list[Path] = []
    with contextlib.ExitStack() as records:

        def temporary(where: Path, name: str) -> Path:
            path = temporary_file(where, name)
            temporaries.append(path)
            records.enter_context(owned.recorded("partial", path))
            return path

        try:
            staged = temporary(directory, output.name)
            yield staged
            final = staged
            suffix = output.suffix.lower()
            if suffix in COMPRESSED:
                final = temporary(directory, output.name)
                _compress(staged, final, suffix)
            extra: list[tuple[Path, Path]] = []
            for path, content in (sidecars(final) if sidecars else {}).items():
                extra.append((temporary(path.parent, path.name), path))
                _write(extra[-1][0], content)
            with signals.deferred():
                for source, destination in [(final, output), *extra]:
                    os.replace(source, destination)
                    _committed.add(destination.absolute())
        finally:
            with signals.deferred():
                for path in temporaries:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()


def _compress(source: Path, destination: Path, suffix: str) -> None:
    try:
        with source.open("rb") as plain, open(destination, "r+b") as raw:
            if suffix == ".gz":
                # mtime=0 and no file name: the same image always gzips to the same bytes.
                with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as sink:
                    shutil.copyfileobj(plain, sink, 1024 * 1024)
            else:
                _zstd(plain, raw, source.stat().st_size)
    except OSError as exc:
        raise host_error(exc, f"compressing the image to {suffix}", destination.parent) from None


def _zstd(plain: BinaryIO, raw: BinaryIO, size: int) -> None:
    import zstandard

    # Level 19 with the content size in the frame header; no threads, so the same image
    # always compresses to the same bytes.
    compressor = zstandard.ZstdCompressor(level=19, write_content_size=True, threads=0)
    compressor.copy_stream(plain, raw, size=size, read_size=1024 * 1024, write_size=1024 * 1024)


def _write(path: Path, content: bytes) -> None:
    try:
        with open(path, "r+b") as handle:
            handle.write(content)
            handle.truncate()
    except OSError as exc:
        raise host_error(exc, f"writing {path.name}", path.parent) from None


def write_new(path: Path, content: bytes) -> Path:
    """Write ``path`` through a temporary in its directory and a rename: never through a link."""
    temporary = temporary_file(path.parent, path.name)
    try:
        _write(temporary, content)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_in_background(path: Path) -> Future[str]:
    """``sha256_file(path)`` started now in a thread, while something else runs; ``.result()``
    collects it (and re-raises its error in the caller's thread).

    The build starts it on the unmounted image while ``e2fsck -fn`` reads it (one
    core each: hashlib and file reads release the GIL); ``e2fsck -fn`` never
    writes, and a rename keeps the inode, so the digest is the final file's.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexlab-sha256")
    try:
        return pool.submit(sha256_file, path)
    finally:
        pool.shutdown(wait=False)  # the submitted hash still runs to its end


def copy_sparse(source: Path, target: Path) -> None:
    """Copy ``source`` onto ``target`` (a temporary of ours, never a link), its holes kept as holes.

    GNU cp finds the data with SEEK_DATA/FIEMAP and reflinks where the filesystem can:
    better than a hand-written loop.
    """
    run(["cp", "--sparse=always", "--", str(source), str(target)])
