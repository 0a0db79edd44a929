"""`nexlab boot IMAGE`: start the image in a Firecracker-like VM and see the agent start.

Exit status: 0 the agent started, 1 the boot failed (reason and last console
lines printed), 2 bad input (missing image or kernel, not ext4).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nexlab.cli.terminal import TerminalProgress

EXIT_BOOT_FAILED = 1


NAME = "boot"
#: The line in ``nexlab --help`` (also when only another command's parser is built).
HELP = "boot an image in QEMU (microvm/q35, KVM or TCG) and check the agent starts"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from nexlab.boot.boot import DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT, FOREIGN_TIMEOUT_FACTOR

    boot = sub.add_parser(
        NAME,
        help=HELP,
        description="Boot IMAGE on a copy-on-write overlay (the image is never modified) with the host's "
        "Debian cloud kernel (an arm64 image: the arm64 cloud kernel `make kernels` fetches, "
        "in qemu-system-aarch64) and watch the serial console until the init (OpenRC, systemd, busybox init) starts "
        "the agent service.",
    )
    boot.add_argument("image", type=Path, help="the rootfs.ext4 to boot")
    boot.add_argument("--kernel", type=Path,
                      help="bzImage, PVH vmlinux or arm64 Image, for the image's CPU (default: "
                      "/boot/vmlinuz-*-cloud-amd64; arm64: the one `make kernels` puts in "
                      "/var/cache/nexlab/kernels/arm64)")  # fmt: skip
    boot.add_argument("--initrd", type=Path, help="initrd for --kernel (default: none with --kernel)")
    boot.add_argument("--expect", metavar="REGEX", help="success is a console line matching REGEX instead")
    boot.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                      help=f"give up after this long (default {DEFAULT_TIMEOUT:.0f}; "
                      f"{DEFAULT_TIMEOUT * FOREIGN_TIMEOUT_FACTOR:.0f} for an emulated CPU, arm64 on x86)")  # fmt: skip
    boot.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MIB, metavar="MiB",
                      help=f"guest memory (default {DEFAULT_MEMORY_MIB})")  # fmt: skip
    boot.add_argument("--log", type=Path, metavar="FILE", help="keep the whole console in FILE")
    boot.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto",
                      help="auto: KVM when it works, else TCG (default)")  # fmt: skip
    boot.add_argument("--machine", choices=["auto", "microvm", "q35", "virt"], default="auto",
                      help="QEMU machine: microvm (Firecracker's shape) or q35 (a PC); auto: microvm with KVM "
                      "or a kernel without initrd, else q35 (default); arm64 images always boot on virt")  # fmt: skip
    boot.add_argument("--arch", choices=["auto", "amd64", "arm64"], default="auto",
                      help="the image's CPU; auto: the ELF machine of its /sbin/init (default)")  # fmt: skip
    boot.add_argument("--append", default="", metavar="ARGS", help="more kernel command-line arguments")
    boot.add_argument("--network", action="store_true", help="give the guest a user-mode NIC")
    boot.add_argument("--console", action="store_true", help="show the console while booting")
    boot.add_argument("--json", action="store_true",
                      help="print the result as one JSON object on stdout (README: JSON contracts)")  # fmt: skip
    boot.set_defaults(handler=run_boot)


def run_boot(args: argparse.Namespace) -> int:
    from nexlab.boot.boot import boot
    from nexlab.cli.cmd_clean import reap_and_report

    reap_and_report("boot")

    result = boot(
        args.image,
        kernel=args.kernel,
        initrd=args.initrd,
        expect=args.expect,
        timeout=args.timeout,
        memory=args.memory,
        log=args.log,
        accel=args.accel,
        machine=args.machine,
        append=args.append,
        network=args.network,
        arch=args.arch,
        progress=TerminalProgress(show_log=args.console),
    )
    from nexlab import report

    print(report.json_text(result) if args.json else report.text(result), end="" if args.json else "\n")
    return 0 if result.ok else EXIT_BOOT_FAILED
