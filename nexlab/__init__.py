"""nexlab: build, audit, diff and boot Firecracker root filesystems.

The step functions are importable from the top level, for notebooks::

    from nexlab import allocate, mkfs, mount, populate, unmount, build_rootfs

Names are imported on first use so that ``nexlab --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "allocate": "nexlab.builder.allocate",
    "mkfs": "nexlab.builder.mkfs",
    "mount": "nexlab.builder.mount",
    "Mount": "nexlab.builder.mount",
    "populate": "nexlab.builder.populate",
    "unmount": "nexlab.builder.unmount",
    "build_rootfs": "nexlab.builder.pipeline",
    "NexlabError": "nexlab.errors",
    "boot": "nexlab.boot",
    "verify_boot": "nexlab.boot",
    "BootResult": "nexlab.boot",
    "diff": "nexlab.diff",
    "audit": "nexlab.audit.audit",
    "Audit": "nexlab.audit.audit",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nexlab' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
