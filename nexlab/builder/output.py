"""Writing the final image: temporary name in the target directory, rename at the end.

No output is ever opened by a predictable name: every file is made with
``mkstemp`` (``O_CREAT|O_EXCL``, a random name) in the directory it ends up in,
then renamed over the target, so a symlink planted in a writable output
directory (or raced in beside a temporary) is replaced, never followed. The
renames run with SIGINT and SIGTERM held back, and what was renamed into place
is remembered, so the CLI can tell a user whose Ctrl-C came too late that the
output is complete.

A ``.gz`` or ``.zst`` output is a step of its own (``compress``, with a bar in
bytes): one pass reads the image, hashes it (the ext4's sha256) and feeds the
compressor, whose output is hashed as it is written (the artifact's sha256, what
a download check compares), so neither digest costs another read.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from nexlab.builder.results import CompressResult
from nexlab.errors import HostError, InputError
from nexlab.host import owned, signals, sparse
from nexlab.progress import Progress, or_logging

#: The sha256 of a file's bytes, its holes hashed without being read (``nexlab.host.sparse``).
sha256_file = sparse.sha256

#: Suffixes written compressed, and suffixes of compressors nexlab does not write.
COMPRESSED = (".gz", ".zst")
_UNSUPPORTED = (".xz", ".bz2", ".lz4", ".lzma", ".lz", ".zip", ".7z", ".br")

#: The compressor each suffix names, as the step reports it.
FORMATS = {".gz": "gzip", ".zst": "zstd"}
#: Bytes read (and compressed) at a time; the bar is redrawn at most every REPORT seconds.
CHUNK = 1024 * 1024
REPORT = 0.1

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


class Written:
    """What ``staged_output`` did at the end of its block: the compress step's result, if any.

    Filled in before ``sidecars`` is called (a manifest records both digests).
    """

    def __init__(self) -> None:
        self.compressed: CompressResult | None = None


@contextlib.contextmanager
def staged_output(
    output: Path,
    *,
    sidecars: Sidecars | None = None,
    progress: Progress | None = None,
    written: Written | None = None,
) -> Iterator[Path]:
    """Yield a new, empty temporary file beside ``output``; it replaces ``output`` only if the
    block succeeds.

    A ``.gz`` or ``.zst`` output is compressed from the temporary image, as the
    step ``compress`` of ``progress``; its result (sizes, both sha256) goes to
    ``written.compressed``. ``sidecars(final)`` may return more files to write (a
    manifest); they are written to temporaries too and renamed right after the
    image, together. Whatever happens, no temporary file is left behind.
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
                shown = or_logging(progress)
                with shown.step("compress", f"{FORMATS[suffix]} {output.name}") as step:
                    made = step.done(compress(staged, final, suffix, output=output, progress=shown))
                if written is not None:
                    written.compressed = made
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


class _Hashing:
    """A file-like sink that hashes and counts what goes through it to ``raw``."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.bytes = 0

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self.bytes += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def compress(
    source: Path, destination: Path, suffix: str, *, output: Path | None = None, progress: Progress | None = None
) -> CompressResult:
    """Compress ``source`` into ``destination`` (``.gz`` or ``.zst``), reporting bytes read."""
    start = time.monotonic()
    progress = or_logging(progress)
    total = source.stat().st_size
    image_digest = hashlib.sha256()
    try:
        with source.open("rb") as plain, open(destination, "r+b") as raw:
            sink = _Hashing(raw)
            with _compressor(sink, suffix, total) as feed:
                done, shown = 0, 0.0
                while chunk := plain.read(CHUNK):
                    image_digest.update(chunk)
                    feed(chunk)
                    done += len(chunk)
                    now = time.monotonic()
                    if now - shown >= REPORT:
                        shown = now
                        progress.fraction(done / max(total, 1), f"{done / 2**20:.0f} of {total / 2**20:.0f} MiB")
            raw.truncate()
    except OSError as exc:
        raise host_error(exc, f"compressing the image to {suffix}", destination.parent) from None
    progress.fraction(1.0, f"{total / 2**20:.0f} MiB → {sink.bytes / 2**20:.1f} MiB")
    return CompressResult(
        seconds=time.monotonic() - start,
        output=output or destination,
        format=FORMATS[suffix],
        image_bytes=total,
        compressed_bytes=sink.bytes,
        image_sha256=image_digest.hexdigest(),
        sha256=sink.digest.hexdigest(),
    )


@contextlib.contextmanager
def _compressor(sink: _Hashing, suffix: str, size: int) -> Iterator[Callable[[bytes], Any]]:
    """A function that compresses one chunk more into ``sink``; the stream ends with the block."""
    if suffix == ".gz":
        # mtime=0 and no file name: the same image always gzips to the same bytes.
        with gzip.GzipFile(filename="", fileobj=sink, mode="wb", mtime=0) as gz:
            yield gz.write
        return
    import zstandard

    # Level 19 with the content size in the frame header; no threads, so the same image
    # always compresses to the same bytes.
    compressor = zstandard.ZstdCompressor(level=19, write_content_size=True, threads=0)
    with compressor.stream_writer(sink, size=size, write_size=CHUNK, closefd=False) as zst:  # type: ignore[arg-type]
        yield zst.write


def _write(path: Path, content: bytes | Iterable[bytes]) -> None:
    try:
        with open(path, "r+b") as handle:
            for chunk in (content,) if isinstance(content, bytes) else content:
                handle.write(chunk)
            handle.truncate()
    except OSError as exc:
        raise host_error(exc, f"writing {path.name}", path.parent) from None


def write_new(path: Path, content: bytes | Iterable[bytes]) -> Path:
    """Write ``path`` through a temporary in its directory and a rename: never through a link.

    ``content`` may come in chunks (a million-file audit's JSON), written as they come.
    """
    temporary = temporary_file(path.parent, path.name)
    try:
        _write(temporary, content)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return path
