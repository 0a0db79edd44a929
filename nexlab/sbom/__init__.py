"""SBOMs of an audited image: SPDX 2.3 JSON and CycloneDX 1.6 JSON.

``sbom(audit, "spdx")`` returns the document's text; ``write(audit, "cyclonedx",
path)`` writes it atomically. Both read the image once more for what the audit
does not keep (``collect``), build the document with the format's own library
(spdx-tools, cyclonedx-python-lib) and validate it before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.errors import SbomError

if TYPE_CHECKING:
    from nexlab.audit import Audit
    from nexlab.sbom.model import Inventory

#: Format name -> the suffix of the file ``nexlab build --sbom`` writes beside the image.
FORMATS = {"spdx": ".spdx.json", "cyclonedx": ".cdx.json"}
#: Other spellings people use for the same formats.
_ALIASES = {"spdx-json": "spdx", "cdx": "cyclonedx", "cyclonedx-json": "cyclonedx"}

__all__ = ["FORMATS", "beside", "parse_format", "sbom", "sbom_path", "write"]


def parse_format(text: str) -> str:
    """``spdx`` or ``cyclonedx`` (also ``spdx-json``, ``cdx``, ``cyclonedx-json``); ``SbomError`` otherwise."""
    name = text.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in FORMATS:
        raise SbomError(f"unknown SBOM format {text!r}: use spdx or cyclonedx")
    return name


def _render(inventory: Inventory, fmt: str) -> str:
    if fmt == "spdx":
        from nexlab.sbom import spdx

        return spdx.to_json(inventory)
    from nexlab.sbom import cyclonedx

    return cyclonedx.to_json(inventory)


def sbom(result: Audit, fmt: str) -> str:
    """The SBOM of an audited image (audited with hashing: an SBOM carries every file's sha256)."""
    from nexlab.sbom.collect import collect

    return _render(collect(result), parse_format(fmt))


def write(result: Audit, fmts: Mapping[str, str | os.PathLike[str]]) -> list[Path]:
    """Write one SBOM per ``{format: path}`` (the image is read once for all), each atomically."""
    from nexlab.builder.output import write_new
    from nexlab.sbom.collect import collect

    wanted = {parse_format(fmt): Path(path) for fmt, path in fmts.items()}
    for path in wanted.values():
        check_writable(path)
    inventory = collect(result)
    written = []
    for fmt, path in wanted.items():
        text = _render(inventory, fmt)
        try:
            written.append(write_new(path, text.encode("utf-8")))
        except OSError as exc:
            raise SbomError(f"cannot write the SBOM {path}: {exc.strerror or exc}") from None
    return written


def beside(image: str | os.PathLike[str], fmts: list[str]) -> list[Path]:
    """Audit ``image`` (no ``e2fsck``: a build just ran it) and write the SBOMs beside it:
    ``IMAGE.spdx.json``, ``IMAGE.cdx.json`` (what ``nexlab build --sbom`` does)."""
    from nexlab.audit import audit

    wanted = {parse_format(fmt): sbom_path(Path(image), fmt) for fmt in fmts}
    return write(audit(image, fsck_check=False), wanted)


def check_writable(path: Path) -> None:
    """Refuse an SBOM path that cannot be written before the (slower) read: a directory, a missing
    or read-only parent."""
    if path.is_dir():
        raise SbomError(f"cannot write the SBOM {path}: it is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise SbomError(f"cannot write the SBOM {path}: no directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SbomError(f"cannot write the SBOM {path}: {parent} is not writable")


def sbom_path(image: Path, fmt: str) -> Path:
    """``rootfs.ext4`` -> ``rootfs.ext4.spdx.json`` / ``rootfs.ext4.cdx.json`` (beside the manifest)."""
    return image.with_name(image.name + FORMATS[parse_format(fmt)])
