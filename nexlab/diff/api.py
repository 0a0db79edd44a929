"""``diff(a, b)``: compare two ext4 images at three levels and explain what differs."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexlab.builder.inputs import regular_file
from nexlab.diff.causes import CAUSES
from nexlab.diff.compare import (
    compare_content,
    compare_filesystems,
    differing_files,
    files_to_compare,
    same_bytes,
    size_rows,
    usage_by_directory,
)
from nexlab.diff.model import Change, Diff, FilesystemChange, PackageChange, SizeRow
from nexlab.progress import Progress, or_logging

if TYPE_CHECKING:
    from nexlab.image import Entry


def diff(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    deep: bool = False,
    depth: int = 2,
    packages: bool = True,
    workers: int = 2,
    progress: Progress | None = None,
) -> Diff:
    """Compare images ``a`` and ``b``: bytes, filesystem (superblock), content per path.

    ``depth`` sets how deep the per-directory size table goes (2: ``/usr/lib``).
    ``deep=True`` also runs diffoscope on the files whose content differs.
    Raises ``InputError`` for a missing file and ``ImageFormatError`` for one
    that is not ext2/3/4.
    """
    from nexlab.image.compressed import plain_image

    start = time.monotonic()
    progress = or_logging(progress)
    # Checked, but reported as the user wrote them (regular_file resolves to an absolute path).
    regular_file(a, "image"), regular_file(b, "image")
    path_a, path_b = Path(a), Path(b)
    with plain_image(path_a, progress=progress) as plain_a, plain_image(path_b, progress=progress) as plain_b:
        return _diff(path_a, path_b, plain_a, plain_b, deep, depth, packages, workers, progress, start)


def _architectures(
    fs_a: Any, fs_b: Any, filesystem: tuple[FilesystemChange, ...], changes: tuple[Change, ...]
) -> tuple[tuple[FilesystemChange, ...], tuple[Change, ...]]:
    """Images for two CPUs: say so once, and explain each changed binary by it (its ELF machine differs)."""
    from nexlab.image import elf

    arch_a, arch_b = elf.image_architecture(fs_a).main, elf.image_architecture(fs_b).main
    if arch_a is None or arch_b is None or arch_a == arch_b:
        return filesystem, changes

    def machine(fs: Any, path: str) -> str | None:
        try:
            return elf.elf_machine(fs.read_path(path, limit=elf.HEAD))
        except (OSError, ValueError):
            return None

    def rebuilt(change: Change) -> bool:
        content = change.change == "modified" and {"size", "sha256"} & set(change.fields)
        return bool(content) and machine(fs_a, change.path) != machine(fs_b, change.path)

    explained = tuple(replace(c, cause="architecture") if rebuilt(c) else c for c in changes)
    return (*filesystem, FilesystemChange("architecture", arch_a, arch_b, cause="architecture")), explained


def _diff(
    path_a: Path,
    path_b: Path,
    plain_a: Path,
    plain_b: Path,
    deep: bool,
    depth: int,
    packages: bool,
    workers: int,
    progress: Progress,
    start: float,
) -> Diff:
    """``diff`` on plain images (``plain_a``/``plain_b``), reported under the names given."""
    from nexlab.image import open_image

    with progress.step("bytes", "compare the image files") as step:
        # The decompressed images: two .gz of one image made with different gzip levels are identical.
        identical = same_bytes(plain_a, plain_b)
        step.done(identical)
    notes: list[str] = []
    with open_image(plain_a) as fs_a, open_image(plain_b) as fs_b:
        notes += [f"A: {w}" for w in fs_a.warnings] + [f"B: {w}" for w in fs_b.warnings]
        filesystem = compare_filesystems(fs_a.info, fs_b.info)
        with progress.step("walk", "list both filesystems") as step:
            entries_a: dict[str, Entry] = {e.path: e for e in fs_a.walk()}
            entries_b: dict[str, Entry] = {e.path: e for e in fs_b.walk()}
            step.done((len(entries_a), len(entries_b)))
        if identical:
            changes: tuple[Change, ...] = ()
        else:
            with progress.step("content", "compare the bytes of files in both images with equal sizes") as step:
                pairs = files_to_compare(entries_a, entries_b)
                differ, unreadable = differing_files(fs_a, fs_b, pairs, workers=workers)
                notes += unreadable
                step.done(len(pairs))
            # Hashes only for what differs, to show; unchanged files are never hashed.
            hashes_a = fs_a.sha256_files([entries_a[p] for p in differ], workers=workers)
            hashes_b = fs_b.sha256_files([entries_b[p] for p in differ], workers=workers)
            changes = compare_content(entries_a, entries_b, differ, hashes_a, hashes_b)
        filesystem, changes = _architectures(fs_a, fs_b, filesystem, changes)
        directories = size_rows(
            usage_by_directory(entries_a.values(), depth), usage_by_directory(entries_b.values(), depth)
        )
        package_records: tuple[PackageChange, ...] = ()
        package_size_records: tuple[SizeRow, ...] = ()
        if packages:
            from nexlab.diff.packages import compare_packages, packages_of

            with progress.step("packages", "apk/dpkg databases") as step:
                pkgs_a, notes_a = packages_of(fs_a, entries_a)
                pkgs_b, notes_b = packages_of(fs_b, entries_b)
                notes += [f"A: {n}" for n in notes_a] + [f"B: {n}" for n in notes_b]
                package_records, package_size_records = compare_packages(pkgs_a, pkgs_b)
                step.done(len(package_records))
        deep_result = None
        if deep:
            from nexlab.diff.deep import run_diffoscope

            with progress.step("deep", "diffoscope on the changed files") as step:
                deep_result = run_diffoscope(fs_a, fs_b, entries_a, entries_b, changes)
                step.done(deep_result)
    used = {c.cause for c in changes if c.cause} | {f.cause for f in filesystem if f.cause}
    if not identical and not changes and not any(f.cause for f in filesystem):
        used.add("hidden-metadata")
    return Diff(
        a=path_a,
        b=path_b,
        identical_bytes=identical,
        filesystem=filesystem,
        change_records=changes,
        directory_size_records=directories,
        package_size_records=package_size_records,
        package_records=package_records,
        causes={key: CAUSES[key] for key in sorted(used)},
        entries_a=len(entries_a),
        entries_b=len(entries_b),
        notes=tuple(notes),
        deep=deep_result,
        seconds=time.monotonic() - start,
    )
