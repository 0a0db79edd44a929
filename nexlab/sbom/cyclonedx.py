"""The inventory as a CycloneDX 1.6 JSON BOM, built with cyclonedx-python-lib, checked against its schema.

The image is ``metadata.component`` (type ``file``: its sha256 and SHA-1, the
build manifest's inputs as ``nexlab:manifest:*`` properties). The components are
the operating system, every dpkg/apk package (purl, licence, supplier) with its
files nested as ``file`` components, and the files no package lists as
top-level ``file`` components marked ``nexlab:unpackaged``. Every bom-ref is
derived from what it names, never random, so the same image gives the same bytes.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cyclonedx.model import HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component
    from cyclonedx.model.contact import OrganizationalEntity
    from cyclonedx.model.license import License

    from nexlab.sbom.model import Inventory, SbomFile, SbomPackage

#: uuid5 namespace of the serial numbers (the same image gives the same serial number).
NAMESPACE = uuid.UUID("6d1c2f0e-5b7a-4c2e-9f3d-6e657831ab02")
IMAGE_REF = "image"


def _hashes(sha256: str, sha1: str) -> list[HashType]:
    from cyclonedx.model import HashAlgorithm, HashType

    return [HashType(alg=HashAlgorithm.SHA_256, content=sha256), HashType(alg=HashAlgorithm.SHA_1, content=sha1)]


def _file(item: SbomFile, unpackaged: bool) -> Component:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType

    return Component(
        type=ComponentType.FILE,
        name=item.path,
        bom_ref=f"file:{item.path}",
        hashes=_hashes(item.sha256, item.sha1),
        properties=[Property(name="nexlab:unpackaged", value="true")] if unpackaged else None,
    )


def _supplier(text: str | None) -> OrganizationalEntity | None:
    from cyclonedx.model.contact import OrganizationalContact, OrganizationalEntity

    if not text:
        return None
    match = re.fullmatch(r"\s*(.*?)\s*<([^<>]*)>\s*", text)
    name, email = (match.group(1) or text.strip(), match.group(2) or None) if match else (text.strip(), None)
    return OrganizationalEntity(name=name, contacts=[OrganizationalContact(name=name, email=email)] if email else None)


def _licenses(package: SbomPackage) -> list[License]:
    """One SPDX id as ``license.id``; one LicenseRef by name with its text; anything else as an
    ``expression`` (LicenseRefs included: the factory of the library would demote those to names)."""
    from cyclonedx.model import AttachedText
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression

    from nexlab.sbom.licenses import spdx_id

    if package.license is None:
        return []
    expression = package.license.expression
    if expression in package.license.refs:
        return [DisjunctiveLicense(name=expression, text=AttachedText(content=package.license.refs[expression]))]
    if spdx_id(expression) == expression:
        return [DisjunctiveLicense(id=expression)]
    return [LicenseExpression(expression)]


def _package(package: SbomPackage) -> Component:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    properties = [Property(name="nexlab:package:manager", value=package.manager)]
    if package.architecture:
        properties.append(Property(name="nexlab:package:architecture", value=package.architecture))
    if package.license_source:
        properties.append(Property(name="nexlab:license:source", value=package.license_source))
    return Component(
        type=ComponentType.LIBRARY if package.name.startswith("lib") else ComponentType.APPLICATION,
        name=package.name,
        version=package.version,
        bom_ref=package.purl,
        purl=PackageURL.from_string(package.purl),
        supplier=_supplier(package.supplier),
        licenses=_licenses(package),
        properties=properties,
        components=[_file(item, False) for item in package.files],
    )


def bom(inventory: Inventory) -> Bom:
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository

    image = inventory.image
    properties = [Property(name="nexlab:image:size", value=str(image.size))]
    properties += [Property(name=f"nexlab:manifest:{key}", value=value) for key, value in image.manifest.items()]
    properties.append(Property(name="nexlab:timestamp:source", value=image.created_source))
    root = Component(
        type=ComponentType.FILE,
        name=image.name,
        bom_ref=IMAGE_REF,
        hashes=_hashes(image.sha256, image.sha1),
        description="ext4 root filesystem image",
        properties=properties,
    )
    components = [_package(package) for package in inventory.packages]
    if inventory.os.id:
        components.append(
            Component(
                type=ComponentType.OPERATING_SYSTEM,
                name=inventory.os.id,
                version=inventory.os.version_id or None,
                description=inventory.os.pretty_name or None,
                bom_ref=f"os:{inventory.os.id}-{inventory.os.version_id}",
            )
        )
    components += [_file(item, True) for item in inventory.unpackaged]
    tool = Component(type=ComponentType.APPLICATION, name="nexlab", version=inventory.tool_version)
    document = Bom(
        serial_number=uuid.uuid5(NAMESPACE, image.sha256),
        metadata=BomMetaData(
            tools=ToolRepository(components=[tool]),
            component=root,
            timestamp=datetime.fromtimestamp(image.created, UTC),
        ),
        components=components,
    )
    # The image holds them all: said once, so the root is not "a component without dependencies".
    document.register_dependency(root, [c for c in components if c.type is not ComponentType.FILE])
    return document


def validate(text: str) -> None:
    """The BOM against CycloneDX's strict 1.6 JSON schema (shipped with the library: offline)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from nexlab.errors import SbomError

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise SbomError(f"the CycloneDX BOM does not validate: {str(error)[:300]}")


def to_json(inventory: Inventory) -> str:
    from cyclonedx.output.json import JsonV1Dot6

    text = JsonV1Dot6(bom(inventory)).output_as_string(indent=2) + "\n"
    validate(text)
    return text
