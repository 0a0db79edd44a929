"""SBOMs of small ``mkfs.ext4 -d`` images with hand-made package databases (no Docker, no root),
the licence mapping, and the CLI's bad input."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from packageurl import PackageURL

from nexlab.audit import audit
from nexlab.errors import InputError, SbomError
from nexlab.sbom import licenses, parse_format, sbom_path, write
from tests.conftest import nexlab_cli
from tests.sbom.conftest import DEP5, validate_cyclonedx, validate_offline, validate_spdx


def _write_both(image: Path, where: Path) -> tuple[dict, dict]:  # type: ignore[type-arg]
    result = audit(image, fsck_check=False)
    spdx, cdx = where / "x.spdx.json", where / "x.cdx.json"
    assert write(result, {"spdx": spdx, "cyclonedx": cdx}) == [spdx, cdx]
    return validate_spdx(spdx), validate_cyclonedx(cdx)


def _sha256(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


def test_debian_packages_licences_files_and_root(tiny_debian: Path, tmp_path: Path) -> None:
    spdx, cdx = _write_both(tiny_debian, tmp_path)
    packages = {p["name"]: p for p in spdx["packages"]}
    hello = packages["hello"]
    assert hello["versionInfo"] == "1:2.10-3+b1"
    purl = PackageURL.from_string(hello["externalRefs"][0]["referenceLocator"])
    assert (purl.type, purl.namespace, purl.name, purl.version) == ("deb", "debian", "hello", "1:2.10-3+b1")
    assert purl.qualifiers == {"arch": "amd64", "distro": "debian-12"}
    assert hello["supplier"] == "Person: Hello Maintainers (hello@example.org)"
    # DEP-5: GPL-2+ and (GPL-1+ or Artistic) map onto SPDX; an unknown name is a LicenseRef with its text.
    assert hello["licenseDeclared"] == (
        "(GPL-1.0-or-later OR Artistic-1.0) AND GPL-2.0-or-later AND LicenseRef-nexlab-test-licence"
    )
    refs = {r["licenseId"]: r for r in spdx["hasExtractedLicensingInfos"]}
    assert refs["LicenseRef-nexlab-test-licence"]["extractedText"] == "You may do anything with this file."
    # A free-form copyright file asserts nothing.
    assert packages["plain-copyright"]["licenseDeclared"] == "NOASSERTION"
    # Files: the package CONTAINS its own, with sha256 of the real content; the agent is of no package.
    files = {f["fileName"]: f for f in spdx["files"]}
    ids = {f["SPDXID"]: f["fileName"] for f in spdx["files"]}
    contained = {
        (r["spdxElementId"], ids[r["relatedSpdxElement"]])
        for r in spdx["relationships"]
        if r["relationshipType"] == "CONTAINS" and r["relatedSpdxElement"] in ids
    }
    assert (hello["SPDXID"], "./usr/bin/hello") in contained
    sums = {c["algorithm"]: c["checksumValue"] for c in files["./usr/bin/hello"]["checksums"]}
    assert sums["SHA256"] == _sha256("#!/bin/sh\necho hello\n")
    assert sums["SHA1"] == hashlib.sha1(b"#!/bin/sh\necho hello\n").hexdigest()
    assert not any(name == "./usr/local/bin/agent" for _, name in contained)
    assert files["./usr/local/bin/agent"]["comment"] == "in the image; no package database lists it"
    # The image is the described package, with its sha256.
    (described,) = [r["relatedSpdxElement"] for r in spdx["relationships"] if r["relationshipType"] == "DESCRIBES"]
    root = packages[tiny_debian.name]
    assert described == root["SPDXID"]
    image_sums = {c["algorithm"]: c["checksumValue"] for c in root["checksums"]}
    assert image_sums["SHA256"] == hashlib.sha256(tiny_debian.read_bytes()).hexdigest()
    assert (
        packages["debian"]["versionInfo"] == "12" and packages["debian"]["primaryPackagePurpose"] == "OPERATING_SYSTEM"
    )

    # CycloneDX says the same.
    root_component = cdx["metadata"]["component"]
    assert root_component["name"] == tiny_debian.name
    assert {h["alg"]: h["content"] for h in root_component["hashes"]}["SHA-256"] == image_sums["SHA256"]
    components = {c["name"]: c for c in cdx["components"]}
    chello = components["hello"]
    assert chello["purl"] == hello["externalRefs"][0]["referenceLocator"]
    assert chello["licenses"] == [{"expression": hello["licenseDeclared"]}]
    assert chello["supplier"]["name"] == "Hello Maintainers"
    assert [(f["name"], f["hashes"][1]) for f in chello["components"]] == [
        ("/usr/bin/hello", {"alg": "SHA-256", "content": sums["SHA256"]}),
        ("/usr/share/doc/hello/copyright", {"alg": "SHA-256", "content": _sha256(DEP5)}),
    ]
    agent = components["/usr/local/bin/agent"]
    assert agent["type"] == "file" and agent["properties"] == [{"name": "nexlab:unpackaged", "value": "true"}]
    assert "licenses" not in components["plain-copyright"]
    assert components["debian"]["type"] == "operating-system"


def test_alpine_licences_come_from_the_database(tiny_alpine: Path, tmp_path: Path) -> None:
    spdx, cdx = _write_both(tiny_alpine, tmp_path)
    packages = {p["name"]: p for p in spdx["packages"]}
    assert packages["tiny-musl"]["licenseDeclared"] == "MIT"
    # An unknown name in L: becomes a LicenseRef, so the expression still validates.
    assert packages["hello"]["licenseDeclared"] == "GPL-3.0-or-later AND LicenseRef-custom-licence"
    assert packages["hello"]["externalRefs"][0]["referenceLocator"] == (
        "pkg:apk/alpine/hello@2.12-r0?arch=x86_64&distro=alpine-3.20"
    )
    assert packages["hello"]["supplier"] == "Person: Alpine Person (person@example.org)"
    components = {c["name"]: c for c in cdx["components"]}
    assert components["tiny-musl"]["licenses"] == [{"license": {"id": "MIT"}}]
    assert components["hello"]["purl"] == "pkg:apk/alpine/hello@2.12-r0?arch=x86_64&distro=alpine-3.20"


def test_same_image_same_bytes(tiny_debian: Path, tmp_path: Path) -> None:
    """A bit-identical copy elsewhere (same name) gives byte-identical SBOMs, whenever they are made."""
    copy = tmp_path / "elsewhere" / tiny_debian.name
    copy.parent.mkdir()
    shutil.copyfile(tiny_debian, copy)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write_both(tiny_debian, tmp_path / "a")
    _write_both(copy, tmp_path / "b")
    for name in ("x.spdx.json", "x.cdx.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_source_date_epoch_dates_the_documents(
    tiny_debian: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    spdx, cdx = _write_both(tiny_debian, tmp_path)
    assert spdx["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    assert cdx["metadata"]["timestamp"].startswith("2023-11-14T22:13:20")


def test_validation_needs_no_network(tiny_alpine: Path, tmp_path: Path) -> None:
    result = audit(tiny_alpine, fsck_check=False)
    paths = write(result, {"spdx": tmp_path / "a.spdx.json", "cyclonedx": tmp_path / "a.cdx.json"})
    done = validate_offline(*paths)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "valid offline" in done.stdout


def test_cli_writes_both_and_hashes_despite_no_hash(tiny_debian: Path, tmp_path: Path) -> None:
    spdx, cdx = tmp_path / "s.json", tmp_path / "c.json"
    done = nexlab_cli(
        "audit", str(tiny_debian), "--no-hash", "--no-fsck", "--sbom", "spdx", str(spdx), "--sbom", "cdx", str(cdx)
    )
    assert done.returncode == 0, done.stderr
    assert "--sbom hashes every file anyway" in done.stderr
    assert f"wrote {spdx}" in done.stdout and f"wrote {cdx}" in done.stdout
    assert any(f["fileName"] == "./usr/bin/hello" for f in validate_spdx(spdx)["files"])
    validate_cyclonedx(cdx)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sbom", "xml", "{tmp}/x.json"], "nexlab audit: error: unknown SBOM format 'xml': use spdx or cyclonedx"),
        (["--sbom", "spdx", "{tmp}/no/such/dir/x.json"], "nexlab audit: error: cannot write the SBOM"),
        (["--sbom", "spdx", "{tmp}"], "it is a directory"),
        (["--sbom", "spdx", "{tmp}/a", "--sbom", "spdx-json", "{tmp}/b"], "--sbom spdx given twice"),
    ],
)
def test_cli_bad_sbom_options(tiny_debian: Path, tmp_path: Path, args: list[str], message: str) -> None:
    done = nexlab_cli("audit", str(tiny_debian), *(a.format(tmp=tmp_path) for a in args))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything was read or written


def test_build_refuses_an_unknown_format_before_building(tmp_path: Path) -> None:
    done = nexlab_cli("build", "--agent", str(tmp_path / "agent"), "--sbom", "swid", "-o", str(tmp_path / "r.ext4"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "nexlab build: error: argument --sbom: unknown SBOM format 'swid': use spdx or cyclonedx"
    )
    assert list(tmp_path.iterdir()) == []


def test_library_refuses_an_unhashed_audit(tiny_debian: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs the sha256 of every file"):
        write(audit(tiny_debian, hash=False, fsck_check=False), {"spdx": tmp_path / "x.json"})
    assert list(tmp_path.iterdir()) == []


def test_format_names_and_paths() -> None:
    names = ("spdx", "SPDX-json", "cyclonedx", "cdx")
    assert [parse_format(n) for n in names] == ["spdx", "spdx", "cyclonedx", "cyclonedx"]
    with pytest.raises(SbomError):
        parse_format("swid")
    assert sbom_path(Path("out/rootfs.ext4"), "spdx") == Path("out/rootfs.ext4.spdx.json")
    assert sbom_path(Path("rootfs.ext4.gz"), "cdx") == Path("rootfs.ext4.gz.cdx.json")


@pytest.mark.parametrize(
    ("debian", "spdx"),
    [
        ("GPL-2+", "GPL-2.0-or-later"),
        ("GPL-2", "GPL-2.0-only"),
        ("LGPL-2.1+", "LGPL-2.1-or-later"),
        ("LGPLv3+", "LGPL-3.0-or-later"),
        ("LGPL-2", "LGPL-2.0-only"),
        ("GPL-3.0", "GPL-3.0-only"),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("Expat", "MIT"),
        ("Apache-2", "Apache-2.0"),
        ("zlib", "Zlib"),
        ("GPL", "GPL-1.0-or-later"),
        ("public-domain", None),
        ("GPL-3+ with Bison exception", None),
    ],
)
def test_debian_names_map_onto_spdx_only_when_certain(debian: str, spdx: str | None) -> None:
    assert licenses.spdx_id(debian) == spdx


def test_dep5_expressions() -> None:
    refs: dict[str, str] = {}
    expr = licenses.debian_expression
    assert expr("GPL-1+ or Artistic, and Expat", {}, refs, "f") == "(GPL-1.0-or-later OR Artistic-1.0) AND MIT"
    assert expr("BSD-3-clause and/or GPL-3+", {}, refs, "f") == "BSD-3-Clause OR GPL-3.0-or-later"
    assert expr("GPL-2+ with Texinfo exception", {}, refs, "f") == "LicenseRef-GPL-2-with-Texinfo-exception"
    assert expr("The main library is licensed under", {}, refs, "f") is None  # prose, not names
    assert expr("Foo or Bar baz GPL-2+", {}, refs, "f") is None  # no LicenseRef-Foo left behind
    assert refs == {
        "LicenseRef-GPL-2-with-Texinfo-exception": "The licence named 'GPL-2+ with Texinfo exception' in f."
    }
    assert licenses.debian_copyright("Free-form text, GPL-2+.\n", "f") is None
    assert licenses.apk_license("", "p") is None
    assert licenses.apk_license("MIT AND BSD-2-Clause", "p") == licenses.License("MIT AND BSD-2-Clause", {})


def test_our_cyclonedx_check_refuses_what_the_librarys_refuses(tiny_alpine: Path, tmp_path: Path) -> None:
    """nexlab's schema check (linear uniqueItems) against cyclonedx-python-lib's JsonStrictValidator."""
    import json

    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from nexlab.sbom import cyclonedx

    (path,) = write(audit(tiny_alpine, fsck_check=False), {"cyclonedx": tmp_path / "a.cdx.json"})
    good = json.loads(path.read_text())
    duplicated = json.loads(path.read_text())
    duplicated["components"].append(duplicated["components"][0])
    unknown_id = json.loads(path.read_text())
    unknown_id["components"][0]["licenses"] = [{"license": {"id": "Not-An-SPDX-Id"}}]
    extra = json.loads(path.read_text())
    extra["components"][0]["colour"] = "blue"
    official = JsonStrictValidator(SchemaVersion.V1_6)
    cyclonedx.validate(json.dumps(good))
    assert official.validate_str(json.dumps(good)) is None
    for bad, where in ((duplicated, "at components:"), (unknown_id, "licenses/0/license/id"), (extra, "colour")):
        text = json.dumps(bad)
        assert official.validate_str(text) is not None
        with pytest.raises(SbomError, match="does not validate") as caught:
            cyclonedx.validate(text)
        assert where in str(caught.value)


def test_odd_names_and_no_package_database(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    """Names that are not UTF-8 or carry quotes and newlines; no os-release, no database: still valid."""
    import os

    from nexlab.run import run

    staging = tmp_path / "tree" / "usr" / "bin"
    staging.mkdir(parents=True)
    (staging / os.fsdecode(b"bad-\xff-name")).write_bytes(b"x")
    (staging / 'quote"and\nnewline').write_bytes(b"y")
    image = tmp_path / "odd.ext4"
    run(["mkfs.ext4", "-q", "-F", "-d", str(tmp_path / "tree"), str(image), "8M"])
    (tmp_path / "out").mkdir()
    spdx, cdx = _write_both(image, tmp_path / "out")
    names = {f["fileName"] for f in spdx["files"]}
    assert names == {"./usr/bin/bad-\udcff-name", './usr/bin/quote"and\nnewline'}
    assert all(f["comment"] == "in the image; no package database lists it" for f in spdx["files"])
    assert [p["SPDXID"] for p in spdx["packages"]] == ["SPDXRef-Image"]
    assert {c["name"] for c in cdx["components"]} == {"/usr/bin/bad-\udcff-name", '/usr/bin/quote"and\nnewline'}
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_spdx_validation_still_finds_dangling_references(tiny_debian: Path) -> None:
    """The id index that makes spdx-tools' validation linear must not hide a reference to nothing."""
    from spdx_tools.spdx.model import Relationship, RelationshipType

    from nexlab.sbom import spdx
    from nexlab.sbom.collect import collect

    doc = spdx.document(collect(audit(tiny_debian, fsck_check=False)))
    spdx.validate(doc)
    doc.relationships.append(Relationship("SPDXRef-Image", RelationshipType.CONTAINS, "SPDXRef-Nothing"))
    with pytest.raises(SbomError, match="SPDXRef-Nothing"):
        spdx.validate(doc)
    doc.relationships.pop()
    doc.extracted_licensing_info.clear()  # the LicenseRef the hello package uses is now undeclared
    with pytest.raises(SbomError, match="LicenseRef-nexlab-test-licence"):
        spdx.validate(doc)


def test_beside_writes_next_to_the_image(tiny_alpine: Path, tmp_path: Path) -> None:
    from nexlab.sbom import beside

    image = tmp_path / "rootfs.ext4"
    shutil.copyfile(tiny_alpine, image)
    assert beside(image, ["cdx", "spdx"]) == [tmp_path / "rootfs.ext4.cdx.json", tmp_path / "rootfs.ext4.spdx.json"]
    validate_spdx(tmp_path / "rootfs.ext4.spdx.json")
    validate_cyclonedx(tmp_path / "rootfs.ext4.cdx.json")


def test_a_broken_manifest_beside_the_image_is_one_line(tiny_alpine: Path, tmp_path: Path) -> None:
    image = tmp_path / "rootfs.ext4"
    shutil.copyfile(tiny_alpine, image)
    (tmp_path / "rootfs.ext4.manifest.json").write_text("{not json")
    done = nexlab_cli("audit", str(image), "--no-fsck", "--sbom", "spdx", str(tmp_path / "x.spdx.json"))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"nexlab audit: error: {tmp_path}/rootfs.ext4.manifest.json: not a build manifest")
    assert not (tmp_path / "x.spdx.json").exists()
