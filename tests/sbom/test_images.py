"""SBOMs of real built images, checked against dpkg-query, apk and sha256sum in the base images themselves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from packageurl import PackageURL

from nexlab.builder.manifest import BuildManifest, manifest_path
from tests.conftest import SAMPLE_AGENT, nexlab_cli
from tests.sbom.conftest import validate_cyclonedx, validate_spdx


def _in_container(client: Any, image: str, command: list[str]) -> str:
    output: bytes = client.containers.run(image, command, remove=True, network_mode="none")
    return output.decode()


def _spdx_packages(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The dpkg/apk packages (those with a purl) by name."""
    return {p["name"]: p for p in data["packages"] if p.get("externalRefs")}


def _purl(package: dict[str, Any]) -> PackageURL:
    (ref,) = package["externalRefs"]
    assert ref["referenceType"] == "purl"
    return PackageURL.from_string(ref["referenceLocator"])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def debian_docs(debian_sboms: tuple[Path, Path]) -> tuple[dict[str, Any], dict[str, Any]]:
    spdx, cdx = debian_sboms
    return json.loads(spdx.read_text()), json.loads(cdx.read_text())


def test_debian_packages_are_dpkg_querys(debian_docs, docker_client, debian_base: str) -> None:  # type: ignore[no-untyped-def]
    spdx, cdx = debian_docs
    listing = _in_container(
        docker_client,
        debian_base,
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\t${Maintainer}\t${db:Status-Abbrev}\n"],
    )
    expected = {
        name: (version, arch, maintainer)
        for name, version, arch, maintainer, status in (line.split("\t") for line in listing.splitlines())
        if status.strip() == "ii"
    }
    packages = _spdx_packages(spdx)
    assert set(packages) == set(expected)
    for name, (version, arch, maintainer) in expected.items():
        package = packages[name]
        purl = _purl(package)
        assert (purl.type, purl.namespace, purl.name, purl.version) == ("deb", "debian", name, version)
        assert purl.qualifiers == {"arch": arch, "distro": "debian-12"}
        assert package["versionInfo"] == version
        person, _, email = maintainer.rpartition(" <")
        assert package["supplier"] == f"Person: {person} ({email.rstrip('>')})"
    # CycloneDX: the same packages, by purl.
    purls = {c["purl"] for c in cdx["components"] if "purl" in c}
    assert purls == {_purl(p).to_string() for p in packages.values()}


def test_debian_licences_from_machine_readable_copyright(debian_docs, docker_client, debian_base: str) -> None:  # type: ignore[no-untyped-def]
    spdx, _ = debian_docs
    listing = _in_container(
        docker_client,
        debian_base,
        ["sh", "-c", 'for f in /usr/share/doc/*/copyright; do printf \'%s %s\\n\' "$f" "$(head -c 7 "$f")"; done'],
    )
    dep5 = {line.split("/")[4] for line in listing.splitlines() if line.endswith(" Format:")}
    packages = _spdx_packages(spdx)
    with_licence = {name for name, p in packages.items() if p["licenseDeclared"] != "NOASSERTION"}
    assert with_licence == dep5 & set(packages)
    assert len(with_licence) > len(packages) // 2
    assert "GPL-3.0-or-later" in packages["coreutils"]["licenseDeclared"]
    assert packages["libc6"]["licenseDeclared"] == "NOASSERTION"  # glibc's copyright file is free-form
    refs = {r["licenseId"] for r in spdx["hasExtractedLicensingInfos"]}
    assert "LicenseRef-public-domain" in refs


def test_debian_files_with_their_real_hashes(debian_docs, debian_repro: Path, docker_client, debian_base: str) -> None:  # type: ignore[no-untyped-def]
    from nexlab.audit import audit

    spdx, cdx = debian_docs
    paths = ["/usr/bin/ls", "/usr/lib/x86_64-linux-gnu/libc.so.6"]
    real = {}
    for tool in ("sha256sum", "sha1sum"):
        for line in _in_container(docker_client, debian_base, [tool, *paths]).splitlines():
            digest, path = line.split()
            real[(tool, path)] = digest
    files = {f["fileName"]: f for f in spdx["files"]}
    for path in paths:
        sums = {c["algorithm"]: c["checksumValue"] for c in files["." + path]["checksums"]}
        assert sums == {"SHA256": real[("sha256sum", path)], "SHA1": real[("sha1sum", path)]}
    # Every regular file of the image is in the SBOM; the owners are the audit's.
    result = audit(debian_repro, fsck_check=False)
    regular = {r.path: r.package for r in result.files if r.type == "file"}
    assert {name[1:] for name in files} == set(regular)
    ids = {f["SPDXID"]: f["fileName"][1:] for f in spdx["files"]}
    names = {p["SPDXID"]: p["name"] for p in spdx["packages"]}
    contained = {
        ids[r["relatedSpdxElement"]]: names[r["spdxElementId"]]
        for r in spdx["relationships"]
        if r["relationshipType"] == "CONTAINS" and r["relatedSpdxElement"] in ids
    }
    assert contained == {path: owner for path, owner in regular.items() if owner is not None}
    assert contained["/usr/bin/ls"] == "coreutils"
    assert "/usr/local/bin/agent" not in contained
    # CycloneDX nests the same files under the same packages; the rest are top-level and marked.
    nested = {f["name"]: c["name"] for c in cdx["components"] for f in c.get("components", [])}
    assert nested == contained
    unpackaged = {c["name"] for c in cdx["components"] if c["type"] == "file"}
    assert unpackaged == {path for path, owner in regular.items() if owner is None}
    assert "/usr/local/bin/agent" in unpackaged


def test_debian_root_is_the_image_with_its_manifest(debian_docs, debian_repro: Path) -> None:  # type: ignore[no-untyped-def]
    spdx, cdx = debian_docs
    manifest = BuildManifest.read(manifest_path(debian_repro))
    image_sha = _sha256(debian_repro)
    assert manifest.image_sha256 == image_sha
    root = next(p for p in spdx["packages"] if p["SPDXID"] == "SPDXRef-Image")
    assert {"algorithm": "SHA256", "checksumValue": image_sha} in root["checksums"]
    notes = {a["comment"] for a in root["annotations"]}
    assert f"nexlab:manifest:agent_sha256={_sha256(SAMPLE_AGENT)}" in notes
    assert f"nexlab:manifest:base_image_id={manifest.base_image_id}" in notes
    assert f"nexlab:manifest:source_date_epoch={manifest.source_date_epoch}" in notes
    component = cdx["metadata"]["component"]
    assert {"alg": "SHA-256", "content": image_sha} in component["hashes"]
    properties = {p["name"]: p["value"] for p in component["properties"]}
    assert properties["nexlab:manifest:agent_sha256"] == _sha256(SAMPLE_AGENT)
    assert properties["nexlab:manifest:image_sha256"] == image_sha
    # Dated from the manifest's epoch, not the clock.
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(manifest.source_date_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert spdx["creationInfo"]["created"] == when


def test_alpine_packages_and_licences_are_apks(alpine_320: Path, docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spdx_path, cdx_path = tmp_path / "a.spdx.json", tmp_path / "a.cdx.json"
    done = nexlab_cli("audit", str(alpine_320), "--sbom", "spdx", str(spdx_path), "--sbom", "cyclonedx", str(cdx_path))
    assert done.returncode == 0, done.stderr
    spdx, cdx = validate_spdx(spdx_path), validate_cyclonedx(cdx_path)
    # `apk list -I`: "busybox-1.36.1-r29 x86_64 {busybox} (GPL-2.0-only) [installed]"
    listed = _in_container(docker_client, "nexlab/alpine:3.20.3", ["apk", "list", "-I"]).splitlines()
    expected = {}
    for line in listed:
        full, arch, _origin, rest = line.split(" ", 3)
        expected[full] = (arch, rest[rest.index("(") + 1 : rest.rindex(")")])
    packages = _spdx_packages(spdx)
    assert {f"{n}-{p['versionInfo']}" for n, p in packages.items()} == set(expected)
    for name, package in packages.items():
        arch, licence = expected[f"{name}-{package['versionInfo']}"]
        assert package["licenseDeclared"] == licence  # every Alpine package has one
        assert _purl(package).to_string() == (
            f"pkg:apk/alpine/{name}@{package['versionInfo']}?arch={arch}&distro=alpine-3.20"
        )
    assert packages["busybox"]["supplier"].startswith("Person: ")
    components = {c["name"]: c for c in cdx["components"] if "purl" in c}
    assert set(components) == set(packages)
    assert all(c["licenses"] for c in components.values())
    busybox_files = {f["name"] for f in components["busybox"]["components"]}
    assert "/bin/busybox" in busybox_files
    os_component = next(c for c in cdx["components"] if c["type"] == "operating-system")
    assert (os_component["name"], os_component["version"]) == ("alpine", "3.20.3")
    assert {"alg": "SHA-256", "content": _sha256(alpine_320)} in cdx["metadata"]["component"]["hashes"]


def test_build_sbom_is_byte_identical_for_bit_identical_images(alpine_base: str, tmp_path: Path) -> None:
    """Two --reproducible builds in different directories: same image bytes, same SBOM bytes."""
    outputs = []
    for run in ("one", "two"):
        (tmp_path / run).mkdir()
        output = tmp_path / run / "rootfs.ext4"
        done = nexlab_cli(
            "build", "-q", "--agent", str(SAMPLE_AGENT), "--image", alpine_base, "--size", "64MiB",
            "--reproducible", "--sbom", "spdx", "--sbom", "cyclonedx", "-o", str(output),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"wrote {output}.spdx.json" in done.stdout and f"wrote {output}.cdx.json" in done.stdout
        outputs.append(output)
    one, two = outputs
    assert one.read_bytes() == two.read_bytes()
    for suffix in (".spdx.json", ".cdx.json"):
        a, b = one.with_name(one.name + suffix), two.with_name(two.name + suffix)
        assert a.read_bytes() == b.read_bytes(), suffix
    spdx = validate_spdx(one.with_name(one.name + ".spdx.json"))
    cdx = validate_cyclonedx(one.with_name(one.name + ".cdx.json"))
    image_sha = _sha256(one)
    root = next(p for p in spdx["packages"] if p["SPDXID"] == "SPDXRef-Image")
    assert {"algorithm": "SHA256", "checksumValue": image_sha} in root["checksums"]
    assert {"alg": "SHA-256", "content": image_sha} in cdx["metadata"]["component"]["hashes"]
    # No temporary left beside the outputs.
    assert sorted(p.name for p in one.parent.iterdir()) == [
        "rootfs.ext4", "rootfs.ext4.cdx.json", "rootfs.ext4.manifest.json", "rootfs.ext4.spdx.json",
    ]  # fmt: skip


def test_build_sbom_of_a_compressed_output(alpine_base: str, tmp_path: Path, is_root: bool) -> None:
    """The mount build to a .gz: the SBOM is read from the decompressed image, the root is the .gz as written."""
    output = tmp_path / "rootfs.ext4.gz"
    done = nexlab_cli(
        "build", "-q", "--agent", str(SAMPLE_AGENT), "--image", alpine_base, "--size", "64MiB",
        "--sbom", "spdx", "-o", str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    spdx = validate_spdx(tmp_path / "rootfs.ext4.gz.spdx.json")
    root = next(p for p in spdx["packages"] if p["SPDXID"] == "SPDXRef-Image")
    assert root["name"] == "rootfs.ext4.gz"
    assert {"algorithm": "SHA256", "checksumValue": _sha256(output)} in root["checksums"]
    assert "busybox" in _spdx_packages(spdx)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs.ext4.gz", "rootfs.ext4.gz.spdx.json"]
