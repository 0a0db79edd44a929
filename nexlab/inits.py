"""The init systems nexlab knows and how to tell them apart from names and a few bytes.

Neutral ground for the builder (which reads a base image through Docker) and the
audit (which reads an ext4 image's records): neither depends on the other for it.
"""

from __future__ import annotations

import enum
import posixpath


class InitKind(enum.StrEnum):
    OPENRC = "openrc"
    SYSTEMD = "systemd"
    BUSYBOX = "busybox"
    SYSVINIT = "sysvinit"


#: Where each init's agent service lives in the image.
SERVICE_PATHS = {
    InitKind.OPENRC: "/etc/init.d/agent",
    InitKind.SYSTEMD: "/etc/systemd/system/agent.service",
    InitKind.BUSYBOX: "/usr/local/sbin/agent-service",
    InitKind.SYSVINIT: "/usr/local/sbin/agent-service",
}
INIT_PATHS = ("/sbin/init", "/usr/sbin/init")
OPENRC_RUN_PATHS = ("/sbin/openrc-run", "/usr/sbin/openrc-run")


def classify(pid1: str | None, head: bytes, *, openrc: bool) -> InitKind | None:
    """The init from ``/sbin/init``'s resolved path and first bytes; None when there is none.

    OpenRC is not PID 1 (busybox init or sysvinit runs it from inittab), so a
    base with ``openrc-run`` counts as OpenRC unless systemd is PID 1.
    """
    if pid1 is None:
        return InitKind.OPENRC if openrc else None
    name = posixpath.basename(pid1)
    if name == "busybox" or b"BusyBox v" in head:
        pid1_kind = InitKind.BUSYBOX
    elif name == "systemd" or (b"systemd" in head and b"INIT_VERSION=sysvinit" not in head):
        pid1_kind = InitKind.SYSTEMD
    elif head.startswith(b"\x7fELF") and b"INIT_VERSION=sysvinit" in head:
        pid1_kind = InitKind.SYSVINIT
    else:
        return InitKind.OPENRC if openrc else None
    if openrc and pid1_kind != InitKind.SYSTEMD:
        return InitKind.OPENRC
    return pid1_kind
