"""The inventory as a CycloneDX 1.6 JSON BOM, built with cyclonedx-python-lib, checked against its schema.

The image is ``metadata.component`` (type ``file``: its sha256 and SHA-1, the
build manifest's inputs as ``nexlab:manifest:*`` properties). The components are
the operating system, every dpkg/apk package (purl, licence, supplier) with its
files nested as ``file`` components, and the files no package lists as
top-level ``file`` components marked ``nexlab:unpackaged``. Every bom-ref is
derived from what it names, never random, so the same image gives the same bytes.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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
        # What a package is for is not in its database; scanners take OS packages as libraries.
        type=ComponentType.LIBRARY,
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


@functools.cache
def _schema_validator() -> Any:
    """A Draft 7 validator of CycloneDX's strict 1.6 JSON schema, as the library ships it (with the
    SPDX licence, JSF and cryptography schemas it refers to: offline), like the library's own
    ``JsonStrictValidator`` but with ``uniqueItems`` checked in linear time.

    jsonschema compares every pair of an array of objects for ``uniqueItems`` (it cannot sort
    them): for the 600 top-level components of a Debian BOM that is most of a 10 s validation.
    Comparing their canonical JSON (sorted keys) is the same test for JSON without floats (where
    jsonschema's 1 == 1.0 would differ from the text); arrays with floats keep jsonschema's own
    check. tests/sbom checks every BOM with the library's validator as well.
    """
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.schema._res import BOM_JSON_STRICT, CRYPTOGRAPHY_DEFS, JSF, SPDX_JSON
    from jsonschema import ValidationError, validators
    from jsonschema.validators import Draft7Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT7

    original = Draft7Validator.VALIDATORS["uniqueItems"]

    def unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if not (unique and validator.is_type(instance, "array")):
            return
        if _has_float(instance):
            yield from original(validator, unique, instance, schema)
            return
        texts = [json.dumps(item, sort_keys=True) for item in instance]
        if len(set(texts)) != len(texts):
            yield ValidationError(f"{len(texts) - len(set(texts))} of its {len(texts)} elements are duplicates")

    def load(path: str | None) -> Any:
        assert path is not None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    prefix = "http://cyclonedx.org/schema/"
    registry: Any = Registry().with_resources(
        [
            (f"{prefix}spdx.SNAPSHOT.schema.json", DRAFT7.create_resource(load(SPDX_JSON))),
            (f"{prefix}cryptography-defs.SNAPSHOT.schema.json", DRAFT7.create_resource(load(CRYPTOGRAPHY_DEFS))),
            (f"{prefix}jsf-0.82.SNAPSHOT.schema.json", DRAFT7.create_resource(load(JSF))),
        ]
    )
    cls = validators.extend(Draft7Validator, {"uniqueItems": unique_items})
    return cls(
        load(BOM_JSON_STRICT[SchemaVersion.V1_6]), registry=registry, format_checker=Draft7Validator.FORMAT_CHECKER
    )


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def validate(text: str) -> None:
    """The BOM against CycloneDX's strict 1.6 JSON schema (shipped with the library: offline)."""
    from jsonschema.exceptions import best_match

    from nexlab.errors import SbomError

    error = best_match(_schema_validator().iter_errors(json.loads(text)))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the document"
        raise SbomError(f"the CycloneDX BOM does not validate at {where}: {error.message[:300]}")


def to_json(inventory: Inventory) -> str:
    from cyclonedx.output.json import JsonV1Dot6

    with warnings.catch_warnings():
        # An image without packages or os-release: the root depends on nothing, and that is complete.
        warnings.filterwarnings("ignore", message=".*has no defined dependencies", category=UserWarning)
        text = JsonV1Dot6(bom(inventory)).output_as_string(indent=2) + "\n"
    validate(text)
    return text
