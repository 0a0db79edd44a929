"""The inventory as an SPDX 2.3 JSON document, built and validated with spdx-tools.

The image is the described package (its sha256 and SHA-1, the build manifest's
inputs as annotations); it CONTAINS the operating system and every dpkg/apk
package, each of which CONTAINS its files. Files no package lists are in the
document without any CONTAINS (SPDX's way to say "of no package"; the image, a
package whose files were not analysed, may contain no files), with a comment
saying so.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spdx_tools.spdx.model import Document, File

    from nexlab.sbom.model import Inventory, SbomFile, SbomPackage

#: uuid5 namespace of the document namespaces (the same image gives the same document).
NAMESPACE = uuid.UUID("6d1c2f0e-5b7a-4c2e-9f3d-6e657831ab01")
IMAGE_ID = "SPDXRef-Image"
OS_ID = "SPDXRef-OperatingSystem"
UNPACKAGED = "in the image; no package database lists it"


def _clean(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def package_id(package: SbomPackage) -> str:
    key = f"{package.manager}\0{package.name}\0{package.version}\0{package.architecture}"
    return f"SPDXRef-Package-{package.manager}-{_clean(package.name)}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def file_id(path: str) -> str:
    """From the path alone, so the same file has the same id in every SBOM (diffs stay small)."""
    return f"SPDXRef-File-{hashlib.sha256(path.encode('utf-8', 'surrogateescape')).hexdigest()[:20]}"


def _actor(text: str | None) -> Any:
    """``Name <email>`` as a Person (what the databases name: people and teams alike, as syft does)."""
    from spdx_tools.spdx.model import Actor, ActorType, SpdxNoAssertion

    if not text:
        return SpdxNoAssertion()
    match = re.fullmatch(r"\s*(.*?)\s*<([^<>]*)>\s*", text)
    name, email = (match.group(1), match.group(2) or None) if match else (text.strip(), None)
    return Actor(ActorType.PERSON, name or text.strip(), email)


def _file(item: SbomFile, comment: str | None) -> File:
    from spdx_tools.spdx.model import Checksum, ChecksumAlgorithm, File, SpdxNoAssertion

    return File(
        name="." + item.path,
        spdx_id=file_id(item.path),
        checksums=[Checksum(ChecksumAlgorithm.SHA1, item.sha1), Checksum(ChecksumAlgorithm.SHA256, item.sha256)],
        license_concluded=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        comment=comment,
    )


def _verification_code(files: Iterable[SbomFile]) -> str:
    """SPDX 2.3 section 7.9: SHA-1 of the files' sorted SHA-1s, concatenated."""
    return hashlib.sha1("".join(sorted(f.sha1 for f in files)).encode()).hexdigest()


def document(inventory: Inventory) -> Document:
    from spdx_tools.common.spdx_licensing import spdx_licensing
    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        Annotation,
        AnnotationType,
        Checksum,
        ChecksumAlgorithm,
        CreationInfo,
        Document,
        ExternalPackageRef,
        ExternalPackageRefCategory,
        ExtractedLicensingInfo,
        Package,
        PackagePurpose,
        PackageVerificationCode,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )

    image = inventory.image
    created = datetime.fromtimestamp(image.created, UTC)
    tool = Actor(ActorType.TOOL, f"nexlab-{inventory.tool_version}")
    serial = uuid.uuid5(NAMESPACE, image.sha256)
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=f"nexlab SBOM of {image.name}",
        document_namespace=f"https://spdx.org/spdxdocs/nexlab/{urllib.parse.quote(image.name, safe='')}-{serial}",
        creators=[tool],
        created=created,
        creator_comment=f"Read from the ext4 image without mounting it; dated from {image.created_source}.",
    )
    root = Package(
        spdx_id=IMAGE_ID,
        name=image.name,
        download_location=SpdxNoAssertion(),
        file_name=image.name,
        files_analyzed=False,
        checksums=[Checksum(ChecksumAlgorithm.SHA256, image.sha256), Checksum(ChecksumAlgorithm.SHA1, image.sha1)],
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        primary_package_purpose=PackagePurpose.FILE,
        description=f"ext4 root filesystem image, {image.size} bytes",
    )
    packages = [root]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, IMAGE_ID)]
    if inventory.os.id:
        packages.append(
            Package(
                spdx_id=OS_ID,
                name=inventory.os.id,
                version=inventory.os.version_id or None,
                download_location=SpdxNoAssertion(),
                files_analyzed=False,
                primary_package_purpose=PackagePurpose.OPERATING_SYSTEM,
                description=inventory.os.pretty_name or None,
                license_concluded=SpdxNoAssertion(),
                license_declared=SpdxNoAssertion(),
                copyright_text=SpdxNoAssertion(),
            )
        )
        relationships.append(Relationship(IMAGE_ID, RelationshipType.CONTAINS, OS_ID))
    files = []
    extracted: dict[str, str] = {}
    for package in inventory.packages:
        spdx_id = package_id(package)
        if package.license is not None:
            for ref, text in package.license.refs.items():
                extracted.setdefault(ref, text)
        packages.append(
            Package(
                spdx_id=spdx_id,
                name=package.name,
                version=package.version,
                download_location=SpdxNoAssertion(),
                supplier=_actor(package.supplier),
                files_analyzed=bool(package.files),
                verification_code=PackageVerificationCode(_verification_code(package.files)) if package.files else None,
                license_concluded=SpdxNoAssertion(),
                license_declared=spdx_licensing.parse(package.license.expression)
                if package.license
                else SpdxNoAssertion(),
                license_comment=f"from {package.license_source}" if package.license_source else None,
                copyright_text=SpdxNoAssertion(),
                external_references=[
                    ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", package.purl)
                ],
                comment=f"{package.manager} package, architecture {package.architecture or 'unknown'}",
            )
        )
        relationships.append(Relationship(IMAGE_ID, RelationshipType.CONTAINS, spdx_id))
        for item in package.files:
            files.append(_file(item, None))
            relationships.append(Relationship(spdx_id, RelationshipType.CONTAINS, file_id(item.path)))
    files += [_file(item, UNPACKAGED) for item in inventory.unpackaged]
    annotations = [
        Annotation(IMAGE_ID, AnnotationType.OTHER, tool, created, f"nexlab:manifest:{key}={value}")
        for key, value in image.manifest.items()
    ]
    return Document(
        creation_info=info,
        packages=packages,
        files=files,
        annotations=annotations,
        relationships=relationships,
        extracted_licensing_info=[
            ExtractedLicensingInfo(license_id=ref, extracted_text=text, license_name=ref.removeprefix("LicenseRef-"))
            for ref, text in sorted(extracted.items())
        ],
    )


_VALIDATING = threading.Lock()


@contextlib.contextmanager
def _ids_indexed(doc: Document) -> Iterator[None]:
    """spdx-tools 0.8 lists every id of the document again for each reference it checks (quadratic:
    25 s for the 16,000 elements of a Debian minbase). During our validation the document does not
    change, so the same membership test runs against one set of its ids: same answers, linear."""
    from spdx_tools.spdx.validation import spdx_id_validators as ids

    known = set(ids.get_list_of_all_spdx_ids(doc))
    original = ids.is_spdx_id_present_in_document

    def present(spdx_id: str, document: Document) -> bool:
        return spdx_id in known if document is doc else original(spdx_id, document)

    with _VALIDATING:
        ids.is_spdx_id_present_in_document = present
        try:
            yield
        finally:
            ids.is_spdx_id_present_in_document = original


def validate(doc: Document) -> None:
    """spdx-tools' full validation (the SPDX 2.3 rules, offline); raises ``SbomError`` with the first problems."""
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    from nexlab.errors import SbomError

    with _ids_indexed(doc):
        messages = validate_full_spdx_document(doc, "SPDX-2.3")
    if messages:
        shown = "; ".join(m.validation_message for m in messages[:3])
        raise SbomError(f"the SPDX document does not validate ({len(messages)} problems): {shown}")


def to_json(inventory: Inventory) -> str:
    """The validated document as JSON text (spdx-tools' own converter; keys in its fixed order)."""
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    doc = document(inventory)
    validate(doc)
    out = io.StringIO()
    write_document_to_stream(doc, out, validate=False)
    return out.getvalue() + "\n"
