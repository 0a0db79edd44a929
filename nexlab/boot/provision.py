"""Provision a boot kernel for a foreign architecture: Debian's arm64 cloud kernel and a tiny initramfs.

An amd64 host cannot ``apt-get install linux-image-cloud-arm64``, and adding
arm64 with ``dpkg --add-architecture`` would change apt for the whole machine.
So apt runs here with a private state of its own (its own sources list, lists
and archive cache in the kernels folder, an empty dpkg status): ``update``
fetches the signed arm64 indexes, ``download`` the package (apt checks its
sha256 against them), and ``dpkg-deb -x`` unpacks it. The host's apt is never
touched.

The cloud kernel has ``virtio_blk`` and ``virtio_mmio`` as modules, and Debian's
initramfs-tools cannot make an arm64 initrd on this host, so we write one: a
newc cpio with busybox (the arm64 ``busybox-static``, fetched the same way),
the virtio modules in dependency order and an ``/init`` that loads them, mounts
``root=`` and hands over to the image's init. Its failure messages are
initramfs-tools' own, so the console watcher's patterns decide them.

``python -m nexlab.boot.provision arm64`` (``make kernels``) does nothing when
a kernel and initrd are already in place.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

from nexlab import tempdirs
from nexlab.boot.kernel import ARCHES, kernels_dir, newest_kernel
from nexlab.errors import InputError, NexlabError
from nexlab.run import run

#: Debian's archive and the suites the kernel comes from (security carries the newest).
_SOURCES = (
    "deb [arch={arch} signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    "http://deb.debian.org/debian bookworm main\n"
    "deb [arch={arch} signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    "http://deb.debian.org/debian-security bookworm-security main\n"
)
#: Debian's name for the architecture, and the meta-package that names the newest cloud kernel.
_DEBIAN_ARCH = {"aarch64": "arm64"}
#: What the initramfs loads: the disk on virtio-mmio (Firecracker's and our -device virtio-blk-device)
#: or virtio-pci, and the NIC for --network. Their dependencies come from the modules' own .modinfo.
_MODULES = ("virtio_mmio", "virtio_pci", "virtio_blk", "virtio_net")

_INIT = r"""#!/bin/busybox sh
# nexlab's initramfs for Debian's arm64 cloud kernel: load the virtio drivers,
# mount root= and start the image's init. Messages as initramfs-tools words them.
bb=/bin/busybox
$bb mkdir -p /dev /proc /sys /root
$bb mount -t devtmpfs devtmpfs /dev
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
for module in $($bb cat /modules); do $bb insmod "/lib/modules/$module" 2>/dev/null; done
root=/dev/vda mode=rw init=/sbin/init fstype=ext4
for word in $($bb cat /proc/cmdline); do
    case "$word" in
        root=*) root=${word#root=} ;;
        rootfstype=*) fstype=${word#rootfstype=} ;;
        init=*) init=${word#init=} ;;
        ro) mode=ro ;;
        rw) mode=rw ;;
    esac
done
tries=0
while [ ! -b "$root" ] && [ "$tries" -lt 50 ]; do $bb sleep 0.1; tries=$((tries + 1)); done
if [ ! -b "$root" ]; then
    echo "Gave up waiting for root file system device."
    echo "ALERT!  $root does not exist.  Dropping to a shell!"
    exit 1
fi
if ! $bb mount -t "$fstype" -o "$mode" "$root" /root; then
    echo "Failed to mount $root as root file system."
    exit 1
fi
if [ ! -x "/root$init" ] && [ ! -L "/root$init" ]; then
    echo "Target filesystem doesn't have requested $init."
    echo "No init found."
    exit 1
fi
# The image's getty is on ttyS0 (Firecracker's console); here the console is the
# PL011 ttyAMA0. ttyS0 as a link to it gives that getty the console (its login
# prompt tells the watcher the boot is over) instead of a getty respawning on a
# port with no UART. devtmpfs is one filesystem: the link survives the image's
# own mount of /dev.
if [ -c /dev/ttyAMA0 ]; then $bb rm -f /dev/ttyS0; $bb ln -s ttyAMA0 /dev/ttyS0; fi
$bb umount /proc /sys
$bb mount --move /dev /root/dev 2>/dev/null || $bb umount /dev
exec $bb switch_root /root "$init"
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nexlab.boot.provision", description=__doc__.split("\n")[0])
    parser.add_argument("arch", choices=sorted(_DEBIAN_ARCH) + sorted(_DEBIAN_ARCH.values()))
    parser.add_argument("--refresh", action="store_true", help="fetch again even if a kernel is in place")
    args = parser.parse_args(argv)
    arch = ARCHES.get(args.arch, args.arch)
    try:
        target = kernels_dir() / _DEBIAN_ARCH[arch]
        if not args.refresh and (present := newest_kernel(target, arch)) is not None:
            print(f"{_DEBIAN_ARCH[arch]} kernel: {present.path} (present)")
            return 0
        kernel = provision(arch, target)
    except NexlabError as exc:
        print(f"nexlab: {exc}", file=sys.stderr)
        return 2
    print(f"{_DEBIAN_ARCH[arch]} kernel: {kernel} with {kernel.parent / initrd_name(kernel)}")
    return 0


def initrd_name(kernel: Path) -> str:
    return kernel.name.replace("vmlinuz-", "initrd.img-", 1)


def provision(arch: str, target: Path) -> Path:
    """Fetch the newest Debian cloud kernel for ``arch`` into ``target``, with our initrd; its path."""
    debian_arch = _DEBIAN_ARCH.get(arch)
    if debian_arch is None:
        raise InputError(f"no kernel to provision for {arch}: only {', '.join(_DEBIAN_ARCH)}")
    target.mkdir(parents=True, exist_ok=True)
    apt = _private_apt(target / "apt", debian_arch)
    run(["apt-get", *apt, "update"], timeout=600)
    depends = run(["apt-cache", *apt, "depends", "--no-recommends", f"linux-image-cloud-{debian_arch}"]).stdout
    package = next((line.split(":", 1)[1].strip() for line in depends.splitlines() if "Depends:" in line), None)
    if package is None:
        raise InputError(f"linux-image-cloud-{debian_arch} names no kernel package: {depends.strip()[:200]}")
    with tempdirs.directory("kernel") as work:
        debs = work / "debs"
        debs.mkdir()
        run(["apt-get", *apt, "download", package, "busybox-static"], cwd=debs, timeout=600)
        tree = work / "tree"
        for deb in sorted(debs.glob("*.deb")):
            run(["dpkg-deb", "-x", str(deb), str(tree)])
        kernels = sorted((tree / "boot").glob("vmlinuz-*"))
        if len(kernels) != 1:
            raise InputError(f"{package} holds {len(kernels)} kernels, not one")
        kernel = kernels[0]
        version = kernel.name.removeprefix("vmlinuz-")
        initrd = work / initrd_name(kernel)
        initrd.write_bytes(gzip.compress(initramfs(tree, version), mtime=0))
        for source in (tree / "boot" / f"config-{version}", initrd, kernel):  # the kernel last: it marks done
            staged = target / f".{source.name}.part"
            shutil.copyfile(source, staged)
            staged.rename(target / source.name)
    return target / kernel.name


def _private_apt(state: Path, debian_arch: str) -> list[str]:
    """Create apt's private state under ``state``; the options that make apt-get and apt-cache use it."""
    for folder in ("lists/partial", "archives/partial", "etc"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    (state / "etc" / "sources.list").write_text(_SOURCES.format(arch=debian_arch))
    (state / "status").write_text("")
    options = {
        "APT::Architecture": debian_arch,
        "APT::Architectures::": debian_arch,
        "Dir::State::Lists": state / "lists",
        "Dir::State::status": state / "status",
        "Dir::Cache": state / "cache",
        "Dir::Cache::archives": state / "archives",
        "Dir::Etc::SourceList": state / "etc" / "sources.list",
        "Dir::Etc::SourceParts": state / "etc" / "sources.list.d",
        # the download lands in a root-owned folder that apt's _apt user cannot write
        "APT::Sandbox::User": "root",
    }
    return [word for key, value in options.items() for word in ("-o", f"{key}={value}")]


def initramfs(tree: Path, version: str) -> bytes:
    """The initramfs (an uncompressed newc cpio) for the kernel unpacked in ``tree``."""
    modules_root = tree / "lib" / "modules" / version
    order = module_order(modules_root, _MODULES)
    files: list[tuple[str, int, bytes]] = [
        ("init", 0o100755, _INIT.encode()),
        ("bin/busybox", 0o100755, (tree / "bin" / "busybox").read_bytes()),
        ("modules", 0o100644, "".join(f"{path}\n" for path in order).encode()),
    ]
    files += [(f"lib/modules/{path}", 0o100644, (modules_root / path).read_bytes()) for path in order]
    return newc(files)


def module_order(modules_root: Path, wanted: Iterable[str]) -> list[str]:
    """Paths (under ``modules_root``) of ``wanted`` and what they depend on, each after its dependencies."""
    by_name = {path.name.removesuffix(".ko").replace("-", "_"): path for path in modules_root.rglob("*.ko")}
    order: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        path = by_name.get(name)
        if path is None:
            raise InputError(f"kernel module {name} is not in {modules_root}")
        relative = str(path.relative_to(modules_root))
        if relative in order or name in chain:
            return
        for dependency in modinfo(path).get("depends", "").split(","):
            if dependency:
                visit(dependency.replace("-", "_"), (*chain, name))
        order.append(relative)

    for name in wanted:
        visit(name, ())
    return order


def modinfo(module: Path) -> dict[str, str]:
    """The ``key=value`` strings of a 64-bit little-endian ELF module's ``.modinfo`` section."""
    data = module.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise InputError(f"{module} is not a 64-bit little-endian ELF module")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + index * shentsize)
        return name, offset, size

    _, names_at, _ = section(shstrndx)
    for index in range(shnum):
        name, offset, size = section(index)
        if data[names_at + name : data.index(b"\0", names_at + name)] == b".modinfo":
            pairs = (item.split(b"=", 1) for item in data[offset : offset + size].split(b"\0") if b"=" in item)
            return {key.decode(): value.decode(errors="replace") for key, value in pairs}
    return {}


def newc(files: Iterable[tuple[str, int, bytes]]) -> bytes:
    """A cpio archive (SVR4 "newc", what the kernel unpacks) of ``(path, mode, content)``, parents included.

    Every field is fixed (owner root, mtime 0, inodes counted up), so the same
    files give the same bytes.
    """
    entries: list[tuple[str, int, bytes]] = []
    seen: set[str] = set()
    for path, mode, content in files:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent not in seen:
                seen.add(parent)
                entries.append((parent, 0o040755, b""))
        entries.append((path, mode, content))
    out = bytearray()
    for ino, (path, mode, content) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        name = path.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1 if mode & 0o170000 != 0o040000 else 2, 0, len(content), 0, 0, 0, 0, len(name), 0)
        out += b"070701" + "".join(f"{field:08x}" for field in fields).encode() + name
        out += b"\0" * (-len(out) % 4) + content
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


if __name__ == "__main__":
    raise SystemExit(main())
