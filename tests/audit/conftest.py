"""Real images for the auditor tests, built once per session.

- ``debian_rootfs`` / ``alpine_rootfs``: what ``nexlab build`` makes from the bases.
- ``bad_rootfs``: a Debian build whose ``--script`` and a few ``debugfs -w``
  edits afterwards break one rule each (see ``BAD_SCRIPT`` and ``BAD_EDITS``).
- ``bare_image``: ``mkfs.ext4 -d`` from a tiny staging tree with 128-byte inodes,
  an empty root password and nothing Nex needs; no Docker, no root.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nexlab.run import run
from tests.conftest import ALPINE_TARBALLS, SAMPLE_AGENT, require

BUILD_SIZE = "200MiB"

#: Runs in the setup container before the copy (step 3 of setup.sh).
BAD_SCRIPT = r"""set -eu
echo root:root | chpasswd
sed -i 's/^nex:x:1000:1000:/nex:x:1001:1000:/' /etc/passwd
cp /bin/true /usr/local/bin/suid-tool && chmod 4755 /usr/local/bin/suid-tool
mkdir -p /var/lib/drop && chmod 0777 /var/lib/drop
echo x > /etc/world.conf && chmod 0666 /etc/world.conf
mkdir -p /usr/local/share/dup
head -c 1048576 /dev/urandom > /usr/local/share/dup/a
cp /usr/local/share/dup/a /usr/local/share/dup/b
ln /usr/local/share/dup/a /usr/local/share/dup/a-hardlink
touch '/usr/local/share/<img src=x onerror=alert(1)>' && chmod 0666 '/usr/local/share/<img src=x onerror=alert(1)>'
bad="$(printf '/usr/local/share/bad-\377-name')" && touch "$bad" && chmod 0666 "$bad"
"""

#: debugfs -w requests applied to the built image: each breaks one rule.
BAD_EDITS = (
    "sif /etc/init.d/agent uid 1000",  # boot-writable
    "sif /tmp mode 040755",  # tmp-mode
    "sif /home/nex uid 0",  # nex-home
    "sif /usr/local/bin/agent mode 0100644",  # agent-not-executable
    "rm /etc/runlevels/boot/agent",  # service-not-enabled
    "sif /etc/hostname links_count 5",  # fsck-errors
    "feature needs_recovery",  # needs-recovery
)


def _build(output: Path, image: str, script: Path | None = None) -> Path:
    from nexlab.builder.pipeline import build_rootfs

    build_rootfs(output, agent=SAMPLE_AGENT, image=image, script=script, size=BUILD_SIZE)
    return output


@pytest.fixture(scope="session")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit")


@pytest.fixture(scope="session")
def debian_rootfs(debian_base: str, audit_dir: Path) -> Path:
    return _build(audit_dir / "debian.ext4", debian_base)


@pytest.fixture(scope="session")
def alpine_rootfs(alpine_base: str, audit_dir: Path) -> Path:
    return _build(audit_dir / "alpine-3.19.ext4", alpine_base)


@pytest.fixture(scope="session")
def alpine_320_rootfs(docker_client: object, is_root: bool, audit_dir: Path) -> Path:
    from nexlab.builder import base

    tarball = ALPINE_TARBALLS["3.20"]
    require(tarball.is_file(), f"the Alpine minirootfs in {tarball.parent}")
    return _build(audit_dir / "alpine-3.20.ext4", base.alpine(tarball).tag)


@pytest.fixture(scope="session")
def bad_rootfs(debian_base: str, audit_dir: Path) -> Path:
    script = audit_dir / "bad-script.sh"
    script.write_text(BAD_SCRIPT)
    image = _build(audit_dir / "bad.ext4", debian_base, script)
    require(shutil.which("debugfs") is not None, "debugfs (e2fsprogs)")
    for request in BAD_EDITS:
        run(["debugfs", "-w", "-R", request, str(image)])
    return image


@pytest.fixture(scope="session")
def bare_image(audit_dir: Path) -> Path:
    """Nothing Nex needs, 128-byte inodes, root with an empty password."""
    require(shutil.which("mkfs.ext4") is not None, "mkfs.ext4 (e2fsprogs)")
    staging = audit_dir / "bare-staging"
    (staging / "etc").mkdir(parents=True)
    (staging / "usr" / "local" / "bin").mkdir(parents=True)
    (staging / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (staging / "etc" / "shadow").write_text("root::19000:0:99999:7:::\n")
    image = audit_dir / "bare.ext4"
    run(["mkfs.ext4", "-q", "-F", "-I", "128", "-d", str(staging), str(image), "8M"])
    return image


@pytest.fixture(scope="session")
def debian_audit(debian_rootfs: Path):  # type: ignore[no-untyped-def]
    from nexlab.audit import audit

    return audit(debian_rootfs)


@pytest.fixture(scope="session")
def bad_audit(bad_rootfs: Path):  # type: ignore[no-untyped-def]
    from nexlab.audit import audit

    return audit(bad_rootfs)
