"""The benchmark images: ~1.2 GB ext4, ~4,000 files, ~600 MB of data, cached.

``bench_image("a")`` is the base; ``bench_image("b")`` is the same tree with the
handful of known changes in ``CHANGES_B`` (content, mode, owner, mtime, one
added, one removed, one xattr value), for the diff benchmarks. Both are made
with ``mke2fs -d`` from a deterministic staging tree (seeded content, fixed
times, fixed UUID and hash seed), so the same VERSION gives the same bytes.
They are cached under /var/tmp/nexlab-bench/<VERSION>/; bump VERSION when the
recipe changes. A lock file keeps concurrent benchmarks from building twice.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import tempfile
from pathlib import Path

from nexlab.run import run

VERSION = "v1"
CACHE = Path(os.environ.get("NEXLAB_BENCH_CACHE", "/var/tmp/nexlab-bench"))
SIZE = "1200M"
EPOCH = 1_700_000_000
UUID = "4e65784c-6162-4265-6e63-680000000001"
HASH_SEED = "4e65784c-6162-4265-6e63-680000000002"

#: What variant "b" changes, by kind: the differ's benchmark checks it finds exactly these.
CHANGES_B = {
    "content": "/etc/app/config.toml",
    "mode": "/usr/bin/tool-0007",
    "owner": "/srv/data/d02/blob-0042.bin",
    "mtime": "/usr/lib/lib-0100.so",
    "added": "/etc/app/added.txt",
    "removed": "/usr/share/doc/removed.txt",
    "xattr": "/srv/data/d00/blob-0000.bin",
}

_DIRS = (
    "usr/bin",
    "usr/lib",
    "usr/lib/modules",
    "usr/share/doc",
    "usr/share/locale",
    "etc/app",
    "var/cache/app",
    "var/log",
    "srv/data/d00",
    "srv/data/d01",
    "srv/data/d02",
    "srv/data/d03",
    "opt/workload",
)


def _tree(root: Path, variant: str) -> int:
    """Write the staging tree; returns the bytes of file data written."""
    rng = random.Random(20261125)
    pool = rng.randbytes(96 << 20)

    def content(size: int) -> bytes:
        start = rng.randrange(len(pool) - size) if size < len(pool) else 0
        return pool[start : start + size]

    for name in _DIRS:
        (root / name).mkdir(parents=True, exist_ok=True)
    total = 0
    written: list[Path] = []

    def put(relative: str, data: bytes, mode: int = 0o644) -> None:
        nonlocal total
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
        written.append(path)
        total += len(data)

    # Like a rootfs: many small files (binaries, libraries, docs, locale), a few big ones.
    for i in range(600):
        put(f"usr/bin/tool-{i:04d}", content(rng.randint(4 << 10, 160 << 10)), 0o755)
    for i in range(800):
        put(f"usr/lib/lib-{i:04d}.so", content(rng.randint(16 << 10, 400 << 10)))
    for i in range(1300):
        put(f"usr/share/doc/pkg-{i % 260:03d}/file-{i:04d}.txt", content(rng.randint(200, 12 << 10)))
    for i in range(700):
        put(f"usr/share/locale/l{i % 35:02d}/messages-{i:04d}.mo", content(rng.randint(1 << 10, 40 << 10)))
    for i in range(300):
        put(f"usr/lib/modules/mod-{i:04d}.ko", content(rng.randint(20 << 10, 300 << 10)))
    for i in range(80):
        put(f"srv/data/d{i % 4:02d}/blob-{i:04d}.bin", content(rng.randint(1 << 20, 4 << 20)))
    for i in range(6):
        put(f"opt/workload/model-{i}.bin", content(rng.randint(12 << 20, 20 << 20)))
    put("etc/app/config.toml", b'[server]\nport = 4222\nname = "bench"\n')
    put("usr/share/doc/removed.txt", b"present in a only\n")
    # Duplicates that are not hardlinks (what the auditor's duplicate report finds) and a few hardlinks.
    for i in range(60):
        source = written[rng.randrange(len(written) - 1)]
        put(f"var/cache/app/copy-{i:03d}", source.read_bytes())
    for i in range(5):
        os.link(root / f"usr/bin/tool-{i:04d}", root / f"usr/bin/alias-{i}")
    for i in range(20):
        os.symlink(f"tool-{i:04d}", root / f"usr/bin/link-{i:02d}")
    os.setxattr(root / CHANGES_B["xattr"].lstrip("/"), "user.checksum", b"sha256:aaaa")
    (root / "usr/bin/tool-0001").chmod(0o4755)
    if variant == "b":
        (root / CHANGES_B["content"].lstrip("/")).write_bytes(b'[server]\nport = 4223\nname = "bench"\n')
        (root / CHANGES_B["mode"].lstrip("/")).chmod(0o700)
        os.chown(root / CHANGES_B["owner"].lstrip("/"), 1000, 1000)
        (root / CHANGES_B["removed"].lstrip("/")).unlink()
        (root / CHANGES_B["added"].lstrip("/")).write_bytes(b"only in b\n")
        os.setxattr(root / CHANGES_B["xattr"].lstrip("/"), "user.checksum", b"sha256:bbbb")
    # Fixed times everywhere (mke2fs -d copies them), then the one mtime change.
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(directory, name), (EPOCH, EPOCH), follow_symlinks=False)
    if variant == "b":
        os.utime(root / CHANGES_B["mtime"].lstrip("/"), (EPOCH + 3600, EPOCH + 3600))
    return total


def bench_image(variant: str = "a") -> Path:
    """Path of the cached benchmark image ``variant`` ("a" or "b"), built on first use."""
    if variant not in ("a", "b"):
        raise ValueError(f"unknown benchmark image variant {variant!r}")
    directory = CACHE / VERSION
    directory.mkdir(parents=True, exist_ok=True)
    image = directory / f"{variant}.ext4"
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image.exists():
            return image
        with tempfile.TemporaryDirectory(prefix=f"staging-{variant}-", dir=directory) as scratch:
            staging = Path(scratch) / "root"
            staging.mkdir()
            _tree(staging, variant)
            partial = directory / f".{variant}.ext4.partial"
            _mkfs_from_tree(staging, partial, SIZE, "-i", "65536")
        partial.rename(image)
    return image


def _mkfs_from_tree(staging: Path, partial: Path, size: str, *inode_options: str) -> None:
    """``mke2fs -d`` with fixed times, UUID and hash seed: the same tree gives the same image."""
    partial.unlink(missing_ok=True)
    options = "hash_seed=" + HASH_SEED + ",root_owner=0:0,lazy_itable_init=0,nodiscard"
    argv = ["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256", *inode_options, "-m", "0"]
    argv += ["-O", "^metadata_csum_seed,^orphan_file", "-U", UUID, "-E", options]
    argv += ["-d", str(staging), str(partial), size]
    run(argv, env={"E2FSPROGS_FAKE_TIME": str(EPOCH)})


def remove_cache() -> None:
    shutil.rmtree(CACHE / VERSION, ignore_errors=True)


# -- the small-file scale images (issue 16) ----------------------------------------------

#: Bump when the scale recipe changes (the cache is keyed by it).
SCALE_VERSION = "scale-v1"
#: name -> (files, sizes): the audit-scale benchmark's images. Sizes are (fraction, low, high) bands.
#: 10k and 100k: mostly 0–64 KiB with 2% of 64–512 KiB (~38 KB per file on average, like the
#: issue's measurements). 1M: mostly 0–8 KiB with 3% of 8–64 KiB (~5 KB per file, ~5 GB): the
#: 100k distribution would make ~38 GB of data plus as much again for the staging tree on a
#: shared disk, and what a million files measure is the per-file cost, which small files show best.
SCALES: dict[str, tuple[int, tuple[tuple[float, int, int], ...]]] = {
    "10k": (10_000, ((0.98, 0, 64 << 10), (0.02, 64 << 10, 512 << 10))),
    "100k": (100_000, ((0.98, 0, 64 << 10), (0.02, 64 << 10, 512 << 10))),
    "1m": (1_000_000, ((0.97, 0, 8 << 10), (0.03, 8 << 10, 64 << 10))),
}
FILES_PER_DIR = 100


def _scale_tree(root: Path, files: int, bands: tuple[tuple[float, int, int], ...]) -> tuple[int, int, int]:
    """Write a seeded small-file tree: ~100 files per directory, 100 directories per top directory,
    a symlink per 500 files and a hard link per 1000. Returns (files, directories, data bytes)."""
    rng = random.Random(20261202 + files)
    pool = rng.randbytes(64 << 20)
    cumulative = []
    acc = 0.0
    for fraction, low, high in bands:
        acc += fraction
        cumulative.append((acc, low, high))
    total = 0
    directories = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for k in range(files):
        dir_index, slot = divmod(k, FILES_PER_DIR)
        directory = root / f"t{dir_index // 100:03d}" / f"d{dir_index % 100:02d}"
        if slot == 0:
            directory.mkdir(parents=True, exist_ok=True)
            directories += 1
        pick = rng.random()
        low, high = next(((lo, hi) for edge, lo, hi in cumulative if pick < edge), cumulative[-1][1:])
        size = rng.randint(low, high)
        start = rng.randrange(len(pool) - size)
        fd = os.open(directory / f"f{k:07d}", flags, 0o644)
        try:
            os.write(fd, pool[start : start + size])
        finally:
            os.close(fd)
        total += size
        if k % 500 == 499:
            os.symlink(f"f{k - 1:07d}", directory / f"l{k:07d}")
        if k % 1000 == 999:
            os.link(directory / f"f{k:07d}", directory / f"h{k:07d}")
    # Fixed times everywhere (mke2fs -d copies them).
    for directory_name, dirs, names in os.walk(root):
        for name in dirs + names:
            os.utime(os.path.join(directory_name, name), (EPOCH, EPOCH), follow_symlinks=False)
    os.utime(root, (EPOCH, EPOCH))
    return files, directories, total


def scale_image(name: str = "100k") -> Path:
    """Path of the cached small-file image ``name`` (a key of ``SCALES``), built on first use.

    Made like ``bench_image`` (seeded tree, fixed times, UUID and hash seed, ``mke2fs -d``);
    the staging tree is deleted once the image is made, only the .ext4 is kept, under
    /var/tmp/nexlab-bench/<SCALE_VERSION>/.
    """
    if name not in SCALES:
        raise ValueError(f"unknown scale image {name!r} (one of {', '.join(SCALES)})")
    files, bands = SCALES[name]
    directory = CACHE / SCALE_VERSION
    directory.mkdir(parents=True, exist_ok=True)
    image = directory / f"{name}.ext4"
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image.exists():
            return image
        with tempfile.TemporaryDirectory(prefix=f"staging-{name}-", dir=directory) as scratch:
            staging = Path(scratch) / "root"
            staging.mkdir()
            _, dirs, data = _scale_tree(staging, files, bands)
            # Data rounded up to blocks per file, directory blocks, inode tables, journal, slack.
            blocks = data // 4096 + files + dirs * 2
            inodes = files + dirs + files // 100 + 1024
            size_kib = (blocks * 4096 + inodes * 256) * 11 // 10 // 1024 + (192 << 10)
            partial = directory / f".{name}.ext4.partial"
            _mkfs_from_tree(staging, partial, f"{size_kib}K", "-N", str(inodes))
        partial.rename(image)
    return image


if __name__ == "__main__":
    import sys
    import time

    for wanted in sys.argv[1:] or ["10k"]:
        began = time.perf_counter()
        made = scale_image(wanted)
        print(f"{made}: {made.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - began:.1f} s", flush=True)
