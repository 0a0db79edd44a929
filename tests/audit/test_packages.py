"""Package databases: the real Alpine 3.19/3.20 and Debian ones, checked against apk and dpkg themselves."""

from __future__ import annotations

from pathlib import Path

import libarchive
import pytest

from nexlab.audit import audit
from nexlab.audit.packages import parse_apk
from tests.conftest import ALPINE_TARBALLS, require


def _in_container(client, image: str, command: list[str]) -> str:  # type: ignore[no-untyped-def]
    output: bytes = client.containers.run(image, command, remove=True, network_mode="none")
    return output.decode()


@pytest.mark.parametrize("release", sorted(ALPINE_TARBALLS))
def test_apk_parser_on_the_official_database(release: str) -> None:
    tarball = ALPINE_TARBALLS[release]
    require(tarball.is_file(), f"the Alpine minirootfs {tarball.name}")
    with libarchive.file_reader(str(tarball)) as archive:
        text = next(b"".join(e.get_blocks()) for e in archive if e.pathname == "./lib/apk/db/installed").decode()
    packages = parse_apk(text)
    assert len(packages) == text.count("\nP:") + text.startswith("P:")
    assert all(p.version and p.declared_size > 0 and p.manager == "apk" for p in packages)
    busybox = next(p for p in packages if p.name == "busybox")
    assert "/bin/busybox" in busybox.paths


@pytest.mark.parametrize("fixture", ["alpine_rootfs", "alpine_320_rootfs"])
def test_apk_packages_match_apk_info(fixture: str, request: pytest.FixtureRequest, docker_client) -> None:  # type: ignore[no-untyped-def]
    image: Path = request.getfixturevalue(fixture)
    result = audit(image)
    tag = "nexlab/alpine:3.19.4" if "3.19" in image.name else "nexlab/alpine:3.20.3"
    expected = set(_in_container(docker_client, tag, ["apk", "info", "-v"]).split())
    assert {f"{p.name}-{p.version}" for p in result.packages} == expected
    owners = {r.path: r.package for r in result.files}
    assert owners["/bin/busybox"] == "busybox"
    assert owners["/usr/local/bin/agent"] is None  # ours, not Alpine's
    busybox = next(p for p in result.packages if p.name == "busybox")
    assert busybox.files >= 1 and busybox.size > 0


def test_dpkg_packages_match_dpkg_query(debian_audit, docker_client, debian_base: str) -> None:  # type: ignore[no-untyped-def]
    listing = _in_container(
        docker_client,
        debian_base,
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Installed-Size}\t${db:Status-Abbrev}\n"],
    )
    expected = {
        (name, version, int(size or 0) * 1024)
        for name, version, size, status in (line.split("\t") for line in listing.splitlines())
        if status.strip() == "ii"
    }
    got = {(p.name, p.version, p.declared_size) for p in debian_audit.packages}
    assert got == expected
    assert {p.manager for p in debian_audit.packages} == {"dpkg"}


def test_dpkg_paths_are_mapped_through_merged_usr(debian_audit) -> None:  # type: ignore[no-untyped-def]
    owners = {r.path: r.package for r in debian_audit.files}
    # dpkg lists /bin/ls and /lib/x86_64-linux-gnu/libc.so.6; the files live under /usr.
    assert owners["/usr/bin/ls"] == "coreutils"
    assert owners["/usr/lib/x86_64-linux-gnu/libc.so.6"] == "libc6"
    assert owners["/usr/local/bin/agent"] is None
    assert owners["/usr/bin"] is None  # shared directories belong to no one package


def test_package_sizes_are_real_bytes_in_the_image(debian_audit) -> None:  # type: ignore[no-untyped-def]
    by_name = {p.name: p for p in debian_audit.packages}
    total = sum(p.size for p in debian_audit.packages)
    assert 0 < total <= debian_audit.budget.allocated_bytes
    coreutils = by_name["coreutils"]
    # The database's estimate and our count of its allocated blocks agree roughly.
    assert 0.5 * coreutils.declared_size < coreutils.size < 1.5 * coreutils.declared_size
    owned = [r for r in debian_audit.files if r.package == "coreutils" and r.type != "dir"]
    assert coreutils.files == len(owned)
    assert debian_audit.budget.unowned_files > 0
