"""Step 2: ``mkfs.ext4`` with every layout choice pinned.

Left to itself mke2fs picks block and inode size from the image size: a 150 MB
image gets 1 KiB blocks and 128-byte inodes, which cannot store dates past 2038.
So block size, inode size, bytes-per-inode, reserved blocks and features are
always passed explicitly, and the config file is our own.
"""

from __future__ import annotations

import os
import re
import time
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from nexlab.builder.results import MkfsResult
from nexlab.errors import InputError
from nexlab.run import run

#: Features every nexlab image gets (Firecracker guests run kernels >= 4.14, which read them all).
#: ``metadata_csum_seed`` and ``orphan_file`` are switched off because bookworm's kernel
#: tools and older e2fsck do not know them, and the host's mke2fs.conf must not decide.
DEFAULT_FEATURES = (
    "has_journal",
    "extent",
    "64bit",
    "flex_bg",
    "huge_file",
    "dir_nlink",
    "extra_isize",
    "metadata_csum",
    "^metadata_csum_seed",
    "^orphan_file",
)


@dataclass(frozen=True)
class MkfsOptions:
    label: str = "rootfs"
    uuid: str | None = None
    hash_seed: str | None = None
    block_size: int = 4096
    inode_size: int = 256
    bytes_per_inode: int = 16384
    #: ``-N``: this many inodes (at least; mke2fs fills the inode tables' last blocks) instead
    #: of one per ``bytes_per_inode`` (``--size auto`` counts them from the content).
    inode_count: int | None = None
    reserved_percent: float = 0.0
    features: Sequence[str] = DEFAULT_FEATURES
    populate_from: Path | None = None

    def argv(self, image: Path) -> list[str]:
        extended = ["root_owner=0:0", "lazy_itable_init=0", "nodiscard"]
        if self.hash_seed:
            extended.append(f"hash_seed={self.hash_seed}")
        argv = [
            "mkfs.ext4",
            "-F",
            "-q",
            "-t",
            "ext4",
            "-b",
            str(self.block_size),
            "-I",
            str(self.inode_size),
            *(["-N", str(self.inode_count)] if self.inode_count else ["-i", str(self.bytes_per_inode)]),
            "-m",
            f"{self.reserved_percent:g}",
            "-O",
            ",".join(self.features),
            "-E",
            ",".join(extended),
        ]
        if self.label:
            argv += ["-L", self.label]
        if self.uuid:
            argv += ["-U", self.uuid]
        if self.populate_from is not None:
            argv += ["-d", str(self.populate_from)]
        return [*argv, str(image)]


def pinned_config() -> Path:
    """Our own mke2fs.conf, so the host's defaults never change the layout."""
    return Path(str(resources.files("nexlab.builder.assets") / "mke2fs.conf"))


def validate(options: MkfsOptions) -> None:
    if options.block_size not in (1024, 2048, 4096):
        raise InputError(f"block size {options.block_size} is not 1024, 2048 or 4096")
    if options.inode_size not in (128, 256, 512, 1024):
        raise InputError(f"inode size {options.inode_size} is not 128, 256, 512 or 1024")
    if options.inode_count is not None and options.inode_count < 16:
        raise InputError(f"inode count {options.inode_count} is below 16")
    if not 0 <= options.reserved_percent <= 50:
        raise InputError(f"reserved blocks {options.reserved_percent} % is not between 0 and 50")
    for value in (options.uuid, options.hash_seed):
        if value is not None:
            try:
                uuidlib.UUID(value)
            except ValueError:
                raise InputError(f"{value!r} is not a UUID") from None


def mkfs(
    image: str | os.PathLike[str],
    *,
    label: str = "rootfs",
    uuid: str | None = None,
    reserved_percent: float = 0.0,
    inode_size: int = 256,
    block_size: int = 4096,
    bytes_per_inode: int = 16384,
    inode_count: int | None = None,
    features: Sequence[str] = DEFAULT_FEATURES,
    hash_seed: str | None = None,
    populate_from: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> MkfsResult:
    """Make an ext4 filesystem in ``image`` (an existing file, e.g. from ``allocate``).

    Defaults: 4 KiB blocks, 256-byte inodes, one inode per 16 KiB and 0 % reserved
    for root, because the agent runs as ``nex`` and cannot use root-reserved space.
    ``inode_count`` (``-N``) replaces the ratio with a number of inodes.
    """
    path = Path(image)
    if not path.is_file():
        raise InputError(f"{path} is not a file", hint="create it first with allocate()")
    options = MkfsOptions(
        label=label,
        uuid=uuid,
        hash_seed=hash_seed,
        block_size=block_size,
        inode_size=inode_size,
        bytes_per_inode=bytes_per_inode,
        inode_count=inode_count,
        reserved_percent=reserved_percent,
        features=tuple(features),
        populate_from=Path(populate_from) if populate_from is not None else None,
    )
    return make_filesystem(path, options, env=env)


def make_filesystem(path: Path, options: MkfsOptions, *, env: Mapping[str, str] | None = None) -> MkfsResult:
    validate(options)
    start = time.monotonic()
    argv = options.argv(path)
    run(argv, env={"MKE2FS_CONFIG": str(pinned_config()), **(env or {})})
    facts = superblock_facts(path)
    return MkfsResult(
        seconds=time.monotonic() - start,
        image=path,
        block_size=int(facts["Block size"]),
        inode_size=int(facts["Inode size"]),
        inode_count=int(facts["Inode count"]),
        block_count=int(facts["Block count"]),
        uuid=facts["Filesystem UUID"],
        label=facts.get("Filesystem volume name", "").replace("<none>", ""),
        reserved_percent=options.reserved_percent,
        features=tuple(facts["Filesystem features"].split()),
        command=tuple(argv),
    )


_FIELD = re.compile(r"^([A-Za-z][A-Za-z /#-]*?):\s*(.*)$")


def superblock_facts(path: Path) -> dict[str, str]:
    """``dumpe2fs -h`` as a dict (label -> value)."""
    output = run(["dumpe2fs", "-h", str(path)]).stdout
    facts: dict[str, str] = {}
    for line in output.splitlines():
        match = _FIELD.match(line)
        if match:
            facts.setdefault(match.group(1), match.group(2).strip())
    return facts
