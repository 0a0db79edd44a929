"""nexlab: build, audit, diff and boot Firecracker root filesystems.

The step functions are importable from the top level, for notebooks::

    from nexlab import allocate, mkfs, mount, populate, unmount, build_rootfs

Names are imported on first use so that ``nexlab --help`` stays fast. The
module's own helpers are underscored and ``dir(nexlab)`` lists the public API
alone (``__all__`` and ``__version__``).
"""

import typing as _typing

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

__all__ = [
    "Audit",
    "BootResult",
    "Mount",
    "NexlabError",
    "allocate",
    "audit",
    "boot",
    "build_rootfs",
    "diff",
    "mkfs",
    "mount",
    "populate",
    "unmount",
    "verify_boot",
]  # the keys of _EXPORTS (tests/test_package.py checks)

if _typing.TYPE_CHECKING:
    # What the lazy names are, for type checkers (py.typed): never imported at run time.
    from nexlab.audit.audit import Audit, audit
    from nexlab.boot.boot import boot, verify_boot
    from nexlab.boot.result import BootResult
    from nexlab.builder.allocate import allocate
    from nexlab.builder.mkfs import mkfs
    from nexlab.builder.mount import Mount, mount
    from nexlab.builder.pipeline import build_rootfs
    from nexlab.builder.populate import populate
    from nexlab.builder.unmount import unmount
    from nexlab.diff.api import diff
    from nexlab.errors import NexlabError


def __getattr__(name: str) -> _typing.Any:
    import importlib

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nexlab' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
