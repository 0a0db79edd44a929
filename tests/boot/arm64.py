"""A small arm64 image without emulation: the arm64 busybox of nexlab's initramfs, busybox init and the agent.

It is laid out as ``nexlab build`` lays out a busybox-init image (the inittab
wrapper ``agent-service``, a getty on ttyS0, the nex user), written with
``mkfs.ext4 -d``: no arm64 code runs on the host, so it needs neither
binfmt nor qemu-user-static, only the kernel ``make kernels`` provisions.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from nexlab.builder import assets

APPLETS = ("sh", "mount", "mountpoint", "mkdir", "hostname", "cat", "echo", "sleep", "kill", "su", "setpriv",
           "grep", "getty", "id", "date", "mknod", "umount", "ls", "login", "true")  # fmt: skip


def busybox_from_initrd(initrd: Path) -> bytes:
    import libarchive

    with libarchive.file_reader(str(initrd)) as archive:
        for entry in archive:
            if entry.pathname == "bin/busybox":
                return b"".join(entry.get_blocks())
    raise AssertionError(f"no bin/busybox in {initrd}")


def busybox_image(initrd: Path, work: Path, agent: Path, *, name: str = "arm64.ext4") -> Path:
    root = work / f"{name}.root"
    shutil.rmtree(root, ignore_errors=True)
    for folder in ("bin", "sbin", "etc", "dev", "proc", "sys", "run", "tmp", "home/nex", "usr/local/bin",
                   "usr/local/sbin"):  # fmt: skip
        (root / folder).mkdir(parents=True)
    (root / "bin/busybox").write_bytes(busybox_from_initrd(initrd))
    (root / "bin/busybox").chmod(0o755)
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "sbin/init").symlink_to("../bin/busybox")
    (root / "sbin/getty").symlink_to("../bin/busybox")
    service = Path(assets.__file__).parent / "agent-service.sh"
    shutil.copy(service, root / "usr/local/sbin/agent-service")
    shutil.copy(agent, root / "usr/local/bin/agent")
    for script in ("usr/local/sbin/agent-service", "usr/local/bin/agent"):
        (root / script).chmod(0o755)
    (root / "etc/inittab").write_text(
        "::sysinit:/usr/local/sbin/agent-service sysinit\n"
        "::respawn:/usr/local/sbin/agent-service\n"
        "ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n"
    )
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnex:x:1000:1000:nex:/home/nex:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nnex:x:1000:\n")
    (root / "etc/hostname").write_text("nex\n")
    image = work / name
    image.unlink(missing_ok=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), "-E", "root_owner=0:0", str(image), "64M"], check=True)
    shutil.rmtree(root)
    return image
