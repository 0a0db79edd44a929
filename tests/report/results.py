"""One result of every type the presenters render, from small images made here with ``mkfs.ext4 -d``.

No Docker, no QEMU, no root needed for the images: the pair of tests/diff/pairs.py
(every kind of change, a hostile file name, 300 added files to overflow the row
limits) plus an apk database in each tree, so the package tables and treemap
have something to show. A boot check and the build steps cannot run here; their
results are plain data, written out with the values a real run reports.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import nexlab
from nexlab.audit.audit import Audit
from nexlab.boot.console import Outcome
from nexlab.boot.result import BootResult
from nexlab.builder.normalize import clamp_times
from nexlab.builder.results import AllocateResult, BuildResult, MkfsResult, PopulateResult, UnmountResult
from nexlab.diff.model import DeepResult, Diff
from nexlab.repro.model import ReproResult, RunResult, Variation
from tests.diff.pairs import UUID_B, T, base_tree, make_image, mutate

APK_A = "P:musl\nV:1.2.4-r2\nI:4096\nF:lib\nR:libx.so\n\nP:tool\nV:1.0-r0\nI:1024\nF:bin\nR:tool\n\n"
APK_B = "P:musl\nV:1.2.5-r0\nI:8192\nF:lib\nR:libx.so\n\nP:tool\nV:1.0-r0\nI:1024\nF:bin\nR:tool\n\n"
DIFFOSCOPE_TEXT = "--- a/bin/tool\n+++ b/bin/tool\n@@ -1,2 +1,2 @@\n #!/bin/sh\n-echo version 1\n+echo version 2\n"
DIFFOSCOPE_HTML = '<!DOCTYPE html><html><body><pre>echo version 2 &amp; "quotes"</pre></body></html>'


@dataclass(frozen=True)
class Results:
    work: Path
    audit: Audit
    diff: Diff
    same: Diff
    deep: Diff
    repro: ReproResult
    boot_ok: BootResult
    boot_failed: BootResult
    populate: PopulateResult
    build: BuildResult

    def named(self) -> dict[str, object]:
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "work"}


def _tree(root: Path, apk: str) -> None:
    (root / "lib" / "apk" / "db").mkdir(parents=True, exist_ok=True)
    (root / "lib" / "apk" / "db" / "installed").write_text(apk)


def make_results(work: Path) -> Results:
    tree_a, tree_b = work / "tree-a", work / "tree-b"
    tree_a.mkdir()
    base_tree(tree_a)
    _tree(tree_a, APK_A)
    clamp_times(tree_a, T)
    shutil.copytree(tree_a, tree_b, symlinks=True)
    _tree(tree_b, APK_B)
    mutate(tree_b)  # which pins every time again
    a = make_image(tree_a, work / "a.ext4")
    b = make_image(tree_b, work / "b.ext4", uuid=UUID_B)
    a_again = make_image(tree_a, work / "a-again.ext4", uuid=UUID_B)
    # The time an audit took is the one value that changes from run to run.
    audit = dataclasses.replace(nexlab.audit(b), seconds=0.25)
    diff = nexlab.diff(a, b)
    deep = dataclasses.replace(diff, deep=DeepResult(files=5, text=DIFFOSCOPE_TEXT, html=DIFFOSCOPE_HTML))
    same = nexlab.diff(a, a_again)
    runs = tuple(
        RunResult(i, Variation(f"/tmp/nexlab-repro-{i}", umask, tz, locale), image, digest, 41.5 + i, 0.0)
        for i, (umask, tz, locale, image, digest) in enumerate(
            ((0o022, "UTC", "C.UTF-8", a, "1" * 64), (0o077, "Asia/Tokyo", "fr_FR.UTF-8", a_again, "2" * 64))
        )
    )
    repro = ReproResult("alpine-3.20-plain", "plain", runs, ((1, same),), {"agent": "sha256:" + "3" * 64}, 90.0)
    boot = {
        "image": a,
        "seconds": 12.5,
        "accel": "tcg",
        "machine": "microvm",
        "kernel": Path("/boot/vmlinuz-6.1.0-28-cloud-amd64"),
        "initrd": Path("/boot/initrd.img-6.1.0-28-cloud-amd64"),
        "cmdline": "console=ttyS0 root=/dev/vda rw",
        "memory_mib": 256,
        "console_log": None,
    }
    console = tuple(f"[    {n}.000000] line {n}" for n in range(30))
    boot_ok = BootResult(
        outcome=Outcome.AGENT_STARTED,
        reason="agent started: * Starting agent ... [ ok ]",
        seconds_to_agent=9.75,
        last_lines=console,
        **boot,  # type: ignore[arg-type]
    )
    boot_failed = BootResult(
        outcome=Outcome.KERNEL_PANIC,
        reason="kernel panic: Kernel panic - not syncing: No working init found",
        seconds_to_agent=None,
        last_lines=(*console, "Kernel panic - not syncing: No working init found \x1b[2J"),
        kvm_fallback="/dev/kvm: no such file",
        **boot,  # type: ignore[arg-type]
    )
    populate = PopulateResult(
        seconds=3.5,
        base_image="nexlab/debian:bookworm",
        base_image_id="sha256:" + "4" * 64,
        agent=Path("/work/nex-agent"),
        script=None,
        service=Path("/etc/init.d/agent"),
        used_bytes=60 << 20,
        free_bytes=130 << 20,
        files=4321,
        output_tail=tuple(f"setup step {n}" for n in range(20)),
    )
    steps = (
        AllocateResult(seconds=0.01, path=Path("rootfs.ext4"), size=200 << 20, allocated=0),
        MkfsResult(
            seconds=0.2,
            image=Path("rootfs.ext4"),
            block_size=4096,
            inode_size=256,
            inode_count=51200,
            block_count=51200,
            uuid=UUID_B,
            label="rootfs",
            reserved_percent=0.0,
            features=("has_journal", "extent"),
            command=("mkfs.ext4", "-q", "rootfs.ext4"),
        ),
        populate,
        UnmountResult(seconds=0.5, image=Path("rootfs.ext4"), fsck_clean=True, fsck_report=("clean",)),
    )
    build = BuildResult(
        seconds=4.21, output=Path("rootfs.ext4"), size=200 << 20, sha256="5" * 64, steps=steps, manifest=None
    )
    return Results(work, audit, diff, same, deep, repro, boot_ok, boot_failed, populate, build)
