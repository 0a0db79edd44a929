"""What an SBOM says about an image, independent of the format that carries it.

``collect`` fills these from an ``Audit`` and a second look at the image (the
package fields the audit does not keep, licences, ``/etc/os-release``, a SHA-1
per file for SPDX); ``spdx`` and ``cyclonedx`` map them onto their libraries.
Everything is sorted here, so both writers only have to keep the order.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SbomFile:
    """A regular file of the image (directories, links and devices have no content to hash)."""

    path: str
    sha256: str
    #: SPDX 2.3 requires a SHA-1 for every file; CycloneDX carries it too.
    sha1: str
    size: int


@dataclass(frozen=True)
class License:
    """A package's licence as an SPDX expression, with the ``LicenseRef-`` texts it uses."""

    expression: str
    #: ``LicenseRef-x`` -> the text (or a pointer to it) the image records for it.
    refs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SbomPackage:
    manager: str
    name: str
    version: str
    architecture: str
    purl: str
    #: None: the image records no licence for it (NOASSERTION).
    license: License | None
    #: ``Name <email>`` as the database says (dpkg ``Maintainer``, apk ``m:``), or None.
    supplier: str | None
    #: Where the licence was read from (``L:`` of the apk database, a Debian copyright file).
    license_source: str | None
    files: tuple[SbomFile, ...]


@dataclass(frozen=True)
class OperatingSystem:
    """``/etc/os-release``: ID, VERSION_ID and PRETTY_NAME (empty when the image has none)."""

    id: str
    version_id: str
    pretty_name: str


@dataclass(frozen=True)
class SbomImage:
    """The image itself: the root component / described package."""

    name: str
    sha256: str
    sha1: str
    size: int
    #: Seconds since the epoch the documents are dated with (never the wall clock: see ``collect``).
    created: int
    #: Where ``created`` came from, for the documents' comments.
    created_source: str
    #: The build manifest's inputs (``OUTPUT.manifest.json``), as ``key -> text``; empty without one.
    manifest: dict[str, str]


@dataclass(frozen=True)
class Inventory:
    image: SbomImage
    os: OperatingSystem
    packages: tuple[SbomPackage, ...]
    #: Regular files no package database lists.
    unpackaged: tuple[SbomFile, ...]
    #: nexlab's version, as the tool that wrote the SBOM.
    tool_version: str
