"""Images for the SBOM tests, and the validators every SBOM a test writes goes through.

- ``debian_repro``: a ``--reproducible`` build of the Debian base (so a build manifest sits
  beside it), with its two SBOMs written by ``nexlab audit --sbom`` (``debian_sboms``).
- ``alpine_320``: a plain build of the Alpine 3.20 minirootfs base.
- ``tiny_debian`` / ``tiny_alpine``: ``mkfs.ext4 -d`` of a small tree with a hand-made dpkg or
  apk database (no Docker, no root): the fast lane's end-to-end images.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nexlab.run import run
from tests.conftest import ALPINE_TARBALLS, SAMPLE_AGENT, nexlab_cli, require

BUILD_SIZE = "200MiB"

DEP5 = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hello

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: lib/*
Copyright: 2021 Someone Else
License: GPL-1+ or Artistic

Files: extra/*
Copyright: 2022 Nobody
License: nexlab-test-licence
 You may do anything with this file.
"""

DPKG_STATUS = """\
Package: hello
Status: install ok installed
Maintainer: Hello Maintainers <hello@example.org>
Architecture: amd64
Version: 1:2.10-3+b1
Installed-Size: 12
Description: the classic greeting

Package: plain-copyright
Status: install ok installed
Maintainer: Someone <someone@example.org>
Architecture: all
Version: 1.0
Installed-Size: 4
Description: a package whose copyright file is free-form
"""

APK_DB = """\
C:Q1aaaaaaaaaaaaaaaaaaaaaaaaaaa=
P:hello
V:2.12-r0
A:x86_64
S:1000
I:4096
T:the classic greeting
L:GPL-3.0-or-later AND custom-licence
m:Alpine Person <person@example.org>
F:usr/bin
R:hello

C:Q1bbbbbbbbbbbbbbbbbbbbbbbbbbb=
P:tiny-musl
V:1.2.5-r0
A:x86_64
I:4096
L:MIT
m:Natanael Copa <ncopa@alpinelinux.org>
F:lib
R:ld-musl-x86_64.so.1
"""


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _mkfs(staging: Path, image: Path) -> Path:
    require(shutil.which("mkfs.ext4") is not None, "mkfs.ext4 (e2fsprogs)")
    run(["mkfs.ext4", "-q", "-F", "-d", str(staging), str(image), "8M"])
    return image


@pytest.fixture(scope="session")
def sbom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sbom")


@pytest.fixture(scope="session")
def tiny_debian(sbom_dir: Path) -> Path:
    staging = _tree(
        sbom_dir / "tiny-debian",
        {
            "/etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
            "/var/lib/dpkg/status": DPKG_STATUS,
            "/var/lib/dpkg/info/hello.list": "/.\n/usr\n/usr/bin\n/usr/bin/hello\n/usr/share/doc/hello/copyright\n",
            "/var/lib/dpkg/info/plain-copyright.list": "/usr/share/doc/plain-copyright/copyright\n",
            "/usr/bin/hello": "#!/bin/sh\necho hello\n",
            "/usr/share/doc/hello/copyright": DEP5,
            "/usr/share/doc/plain-copyright/copyright": "This is free software, see /usr/share/common-licenses.\n",
            "/usr/local/bin/agent": "#!/bin/sh\necho agent\n",
        },
    )
    return _mkfs(staging, sbom_dir / "tiny-debian.ext4")


@pytest.fixture(scope="session")
def tiny_alpine(sbom_dir: Path) -> Path:
    staging = _tree(
        sbom_dir / "tiny-alpine",
        {
            "/etc/os-release": 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n',
            "/lib/apk/db/installed": APK_DB,
            "/usr/bin/hello": "hello\n",
            "/lib/ld-musl-x86_64.so.1": "not really musl\n",
            "/usr/local/bin/agent": "#!/bin/sh\necho agent\n",
        },
    )
    return _mkfs(staging, sbom_dir / "tiny-alpine.ext4")


@pytest.fixture(scope="session")
def debian_repro(debian_base: str, sbom_dir: Path) -> Path:
    from nexlab.builder.pipeline import build
    from nexlab.builder.spec import BuildSpec

    output = sbom_dir / "debian" / "rootfs.ext4"
    output.parent.mkdir()
    build(BuildSpec.of(SAMPLE_AGENT, debian_base, size=BUILD_SIZE), output, reproducible=True)
    return output


@pytest.fixture(scope="session")
def debian_sboms(debian_repro: Path) -> tuple[Path, Path]:
    spdx, cdx = debian_repro.with_name("debian.spdx.json"), debian_repro.with_name("debian.cdx.json")
    done = nexlab_cli(
        "audit", str(debian_repro), "--no-fsck", "--sbom", "spdx", str(spdx), "--sbom", "cyclonedx", str(cdx)
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {spdx}" in done.stdout and f"wrote {cdx}" in done.stdout
    validate_spdx(spdx)
    validate_cyclonedx(cdx)
    return spdx, cdx


@pytest.fixture(scope="session")
def alpine_320(docker_client: object, is_root: bool, sbom_dir: Path) -> Path:
    from nexlab.builder import base
    from nexlab.builder.pipeline import build_rootfs

    tarball = ALPINE_TARBALLS["3.20"]
    require(tarball.is_file(), f"the Alpine minirootfs in {tarball.parent}")
    output = sbom_dir / "alpine-3.20.ext4"
    build_rootfs(output, agent=SAMPLE_AGENT, image=base.alpine(tarball).tag, size="64MiB")
    return output


def validate_spdx(path: Path) -> dict[str, Any]:
    """Parse the file back with spdx-tools and run its full SPDX 2.3 validation; the JSON as a dict."""
    from spdx_tools.spdx.parser.parse_anything import parse_file

    from nexlab.sbom.spdx import validate

    validate(parse_file(str(path)))  # raises SbomError with the problems
    data: dict[str, Any] = json.loads(path.read_text())
    assert data["spdxVersion"] == "SPDX-2.3"
    return data


def validate_cyclonedx(path: Path) -> dict[str, Any]:
    """The file against CycloneDX's strict 1.6 JSON schema, as shipped with cyclonedx-python-lib."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = path.read_text()
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)[:1000]
    data: dict[str, Any] = json.loads(text)
    assert data["bomFormat"] == "CycloneDX" and data["specVersion"] == "1.6"
    return data


def validate_offline(*paths: Path) -> subprocess.CompletedProcess[str]:
    """Both validators in a process with no network at all (a fresh network namespace: only loopback, down)."""
    require(shutil.which("unshare") is not None, "unshare (util-linux)")
    code = (
        "import sys; from pathlib import Path; from tests.sbom.conftest import validate_spdx, validate_cyclonedx\n"
        "for p in map(Path, sys.argv[1:]):\n"
        "    (validate_spdx if p.name.endswith('.spdx.json') else validate_cyclonedx)(p)\n"
        "print('valid offline')\n"
    )
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        ["unshare", "--net" if os.geteuid() == 0 else "-rn", sys.executable, "-c", code, *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
        check=False,
    )
