"""From an ``Audit`` to an SBOM ``Inventory``.

The audit already has every path, its sha256 and its package. What an SBOM needs
beyond that is read from the image once more, without mounting it: the package
fields the audit does not keep (architecture, maintainer, apk's licence), the
Debian copyright files, ``/etc/os-release`` and a SHA-1 per file (SPDX 2.3
requires one). The documents' date never comes from the wall clock, so the same
image always gives the same SBOM: ``$SOURCE_DATE_EPOCH``, else the build
manifest's epoch, else the filesystem's creation time (a ``--reproducible``
image's is its epoch), else the file's mtime.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from nexlab.audit.packages import dpkg_fields, stanzas
from nexlab.errors import InputError, NexlabError
from nexlab.sbom import licenses
from nexlab.sbom.model import Inventory, OperatingSystem, SbomFile, SbomImage, SbomPackage

if TYPE_CHECKING:
    from nexlab.audit import Audit
    from nexlab.image import Ext4Image

#: Files read for their text (databases, copyright files, os-release): a hostile image
#: must not make us read gigabytes.
READ_LIMIT = 16 << 20
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
APK_DB = "/lib/apk/db/installed"
DPKG_STATUS = "/var/lib/dpkg/status"


def collect(result: Audit) -> Inventory:
    """The SBOM's content for an audited image (hashed: an SBOM without sha256 says too little)."""
    from nexlab import __version__
    from nexlab.image import open_image
    from nexlab.image.compressed import plain_image

    if not result.hashed:
        raise InputError("an SBOM needs the sha256 of every file: audit without hash=False (--no-hash)")
    with plain_image(result.image) as readable, open_image(readable) as fs:
        os_release = _os_release(fs)
        details = {**_dpkg_details(fs), **_apk_details(fs)}
        copyrights = {
            name: _read(fs, f"/usr/share/doc/{name}/copyright") for (manager, name, _v) in details if manager == "dpkg"
        }
        sha1 = _sha1_files(fs)
    files = _files(result, sha1)
    packages = []
    for package in result.packages:
        fields = details.get((package.manager, package.name, package.version), {})
        architecture = fields.get("arch", "")
        if package.manager == "apk":
            license_ = licenses.apk_license(fields.get("license", ""), package.name)
            source = "apk database (L:)" if license_ else None
        else:
            copyright_path = f"/usr/share/doc/{package.name}/copyright"
            text = copyrights.get(package.name)
            license_ = licenses.debian_copyright(text, copyright_path) if text else None
            source = f"{copyright_path} (machine-readable)" if license_ else None
        packages.append(
            SbomPackage(
                manager=package.manager,
                name=package.name,
                version=package.version,
                architecture=architecture,
                purl=purl(package.manager, package.name, package.version, architecture, os_release),
                license=license_,
                supplier=fields.get("supplier") or None,
                license_source=source,
                files=tuple(files.get(package.name, ())),
            )
        )
    return Inventory(
        image=_image(result),
        os=os_release,
        packages=tuple(sorted(packages, key=lambda p: (p.manager, p.name, p.version, p.architecture))),
        unpackaged=tuple(files.get(None, ())),
        tool_version=__version__,
    )


def purl(manager: str, name: str, version: str, architecture: str, os_release: OperatingSystem) -> str:
    """``pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12``, ``pkg:apk/alpine/...&distro=alpine-3.20``."""
    from packageurl import PackageURL

    kind = "deb" if manager == "dpkg" else "apk"
    namespace = os_release.id or ("debian" if kind == "deb" else "alpine")
    qualifiers = {}
    if architecture:
        qualifiers["arch"] = architecture
    if os_release.id and os_release.version_id:
        # Alpine's VERSION_ID is the point release (3.20.3); its package repositories are per 3.20.
        version_id = ".".join(os_release.version_id.split(".")[:2]) if kind == "apk" else os_release.version_id
        qualifiers["distro"] = f"{os_release.id}-{version_id}"
    return str(PackageURL(type=kind, namespace=namespace, name=name, version=version or None, qualifiers=qualifiers))


def _files(result: Audit, sha1: dict[int, str]) -> dict[str | None, list[SbomFile]]:
    """Regular files by owning package (None: no package lists them), in path order."""
    by_owner: dict[str | None, list[SbomFile]] = defaultdict(list)
    for record in result.files:  # sorted by path
        if record.type != "file" or record.sha256 is None or record.inode not in sha1:
            continue  # an unreadable file is already a warning of the audit
        by_owner[record.package].append(SbomFile(record.path, record.sha256, sha1[record.inode], record.size))
    return by_owner


def _image(result: Audit) -> SbomImage:
    from nexlab.builder.manifest import BuildManifest, manifest_path

    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    with result.image.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha256.update(chunk)
            sha1.update(chunk)
    manifest: dict[str, str] = {}
    epoch: int | None = None
    source = ""
    path = manifest_path(result.image)
    if path.is_file():
        try:
            built = BuildManifest.read(path)
        except InputError as exc:
            raise InputError(f"{path}: {exc}", hint="move it away to make an SBOM without the build's inputs") from None
        manifest = {key: str(value) for key, value in sorted(vars(built).items()) if value not in (None, "")}
        epoch, source = built.source_date_epoch, "the build manifest's source_date_epoch"
    given = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if given:
        if not given.isdigit():
            raise InputError(f"SOURCE_DATE_EPOCH: not a number of seconds: {given!r}")
        epoch, source = int(given), "SOURCE_DATE_EPOCH"
    if epoch is None and result.filesystem.created:
        epoch, source = result.filesystem.created, "the filesystem's creation time"
    if epoch is None:
        epoch, source = int(result.image.stat().st_mtime), "the image file's mtime"
    return SbomImage(
        name=result.image.name,
        sha256=sha256.hexdigest(),
        sha1=sha1.hexdigest(),
        size=result.image.stat().st_size,
        created=epoch,
        created_source=source,
        manifest=manifest,
    )


def _read(fs: Ext4Image, path: str) -> str | None:
    entry = fs.lookup(path, follow=True)
    if entry is None or entry.type != "file":
        return None
    return fs.read_bytes(entry, limit=READ_LIMIT).decode("utf-8", "replace")


def _os_release(fs: Ext4Image) -> OperatingSystem:
    for path in OS_RELEASE:
        text = _read(fs, path)
        if text is not None:
            values = {}
            for line in text.splitlines():
                key, sep, value = line.partition("=")
                if sep and re.fullmatch(r"[A-Z_]+", key.strip()):
                    values[key.strip()] = value.strip().strip("\"'")
            return OperatingSystem(values.get("ID", ""), values.get("VERSION_ID", ""), values.get("PRETTY_NAME", ""))
    return OperatingSystem("", "", "")


Details = dict[tuple[str, str, str], dict[str, str]]


def _dpkg_details(fs: Ext4Image) -> Details:
    """(``dpkg``, name, version) -> arch and supplier (``Maintainer``) from dpkg's status file."""
    text = _read(fs, DPKG_STATUS)
    found: Details = {}
    for stanza in stanzas(text or ""):
        fields = dpkg_fields(stanza)
        if "Package" in fields:
            found[("dpkg", fields["Package"], fields.get("Version", ""))] = {
                "arch": fields.get("Architecture", ""),
                "supplier": fields.get("Maintainer", ""),
            }
    return found


def _apk_details(fs: Ext4Image) -> Details:
    """(``apk``, name, version) -> arch (``A:``), licence (``L:``) and supplier (``m:``)."""
    text = _read(fs, APK_DB)
    found: Details = {}
    for stanza in stanzas(text or ""):
        fields: dict[str, str] = {}
        for line in stanza:
            key, sep, value = line.partition(":")
            if sep and len(key) == 1:
                fields.setdefault(key, value)
        if "P" in fields:
            found[("apk", fields["P"], fields.get("V", ""))] = {
                "arch": fields.get("A", ""),
                "license": fields.get("L", ""),
                "supplier": fields.get("m", ""),
            }
    return found


def _sha1_files(fs: Ext4Image) -> dict[int, str]:
    """inode -> SHA-1 of every regular file (each inode once, two threads like the audit's sha256)."""
    todo: dict[int, Any] = {}
    for entry in fs.walk():
        if entry.type == "file":
            todo.setdefault(entry.inode, entry)

    def one(entry: Any) -> tuple[int, str | None]:
        digest = hashlib.sha1()
        try:
            for chunk in fs.iter_chunks(entry):
                digest.update(chunk)
        except (OSError, NexlabError):
            return entry.inode, None
        return entry.inode, digest.hexdigest()

    ordered = sorted(todo.values(), key=lambda e: (-e.size, e.inode))
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="nexlab-sha1") as pool:
        return {inode: digest for inode, digest in pool.map(one, ordered) if digest is not None}
