"""Licences as SPDX expressions: apk's ``L:`` and Debian's machine-readable copyright files.

Alpine records an SPDX expression per package (``L:GPL-2.0-only``). Debian records
licences in ``/usr/share/doc/PKG/copyright``; only the machine-readable (DEP-5)
ones say so in fields, ``License: GPL-2+`` in each ``Files`` paragraph, with
Debian's own short names. Those are mapped onto SPDX identifiers where the
meaning is certain (``GPL-2+`` is ``GPL-2.0-or-later``, ``Expat`` is ``MIT``);
any other name becomes a ``LicenseRef-`` with the text the file gives for it, so
nothing is guessed and every expression validates. A free-form copyright file
gives no assertion.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from nexlab.sbom.model import License

if TYPE_CHECKING:
    from license_expression import Licensing

#: Debian short names whose SPDX identifier is not just the same name (lowercase keys).
_DEBIAN = {
    "expat": "MIT",
    "mit/x11": "X11",
    "apache-2": "Apache-2.0",
    "artistic": "Artistic-1.0",
    "artistic-2": "Artistic-2.0",
    "bsl-1": "BSL-1.0",
    "cc0": "CC0-1.0",
    "gfdl-1.2+": "GFDL-1.2-or-later",
    "gfdl-1.3+": "GFDL-1.3-or-later",
    "gfdl-niv-1.3": "GFDL-1.3-no-invariants-only",
    "gfdl-niv-1.3+": "GFDL-1.3-no-invariants-or-later",
    "gfdl-1.3+-no-invariant": "GFDL-1.3-no-invariants-or-later",
    "mpl-1.1": "MPL-1.1",
    "mpl-2.0": "MPL-2.0",
    # Debian policy: "GPL" with no version means any version.
    "gpl": "GPL-1.0-or-later",
    "lgpl": "LGPL-2.0-or-later",
}
#: ``GPL-2+``, ``LGPLv2.1+``, ``GPL-3.0``, ``AGPL-3``: family, major, minor, "+".
_GNU = re.compile(r"^(a|l)?gpl[v-]?(\d)(?:\.(\d))?(\+)?$", re.IGNORECASE)
_BSD = re.compile(r"^bsd-([234])-clauses?$", re.IGNORECASE)
_DEP5_FORMAT = re.compile(r"^Format:\s*https?://(www\.)?debian\.org/doc/packaging-manuals/copyright-format/", re.I)
_WITH = re.compile(r"^(\S+)\s+with\s+(.+?)\s+exception$", re.IGNORECASE)


@functools.cache
def _licensing() -> Licensing:
    """The SPDX licence list license-expression ships (offline), built once: it takes a second."""
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@functools.cache
def _spdx_ids() -> dict[str, str]:
    """SPDX licence identifiers by lowercase name."""
    return {key.lower(): key for key in _licensing().known_symbols}


def spdx_id(name: str) -> str | None:
    """The SPDX identifier of a Debian or SPDX licence name, or None when there is no certain one."""
    key = name.strip().lower()
    known = _spdx_ids()
    if key in _DEBIAN:
        return _DEBIAN[key]
    gnu = _GNU.match(key)
    if gnu:
        family, major, minor, later = gnu.groups()
        prefix = {"a": "AGPL", "l": "LGPL", None: "GPL"}[family and family.lower()]
        version = f"{major}.{minor or '0'}"
        candidate = f"{prefix}-{version}-{'or-later' if later else 'only'}"
        return known.get(candidate.lower())
    bsd = _BSD.match(key)
    if bsd:
        return f"BSD-{bsd.group(1)}-Clause"
    return known.get(key)


def license_ref(name: str) -> str:
    """``LicenseRef-`` + the name with anything but letters, digits, ``.`` and ``-`` made ``-``."""
    cleaned = re.sub(r"[^A-Za-z0-9.-]+", "-", name.strip()).strip("-") or "unnamed"
    return f"LicenseRef-{cleaned}"


def _symbol(name: str, texts: dict[str, str], refs: dict[str, str], source: str) -> str:
    known = spdx_id(name)
    if known is not None:
        return known
    ref = license_ref(name)
    refs.setdefault(ref, texts.get(name.lower()) or f"The licence named {name!r} in {source}.")
    return ref


def _or_terms(text: str, texts: dict[str, str], refs: dict[str, str], source: str) -> str | None:
    """One comma-free part of a DEP-5 licence: names joined by ``or``/``and``; None if malformed."""
    special = _WITH.match(text)
    if special:
        return _symbol(text, texts, refs, source)
    words = text.split()
    if not words or len(words) % 2 == 0:
        return None
    out = []
    for index, word in enumerate(words):
        if index % 2:
            if word.lower() not in ("or", "and"):
                return None
            out.append(word.upper())
        else:
            out.append(_symbol(word, texts, refs, source))
    return " ".join(out)


def debian_expression(value: str, texts: dict[str, str], refs: dict[str, str], source: str) -> str | None:
    """A DEP-5 ``License:`` first line as an SPDX expression.

    DEP-5 reads ``A or B, and C`` as ``(A or B) and C``; ``and/or`` is ``or``.
    """
    value = re.sub(r"\band/or\b", "or", value.strip(), flags=re.IGNORECASE)
    parts = []
    found: dict[str, str] = {}  # merged into refs only when the whole line parses
    for part in value.split(","):
        part = re.sub(r"^\s*and\s+", "", part).strip()
        if not part:
            continue
        term = _or_terms(part, texts, found, source)
        if term is None:
            return None
        parts.append(term)
    if not parts:
        return None
    for ref, text in found.items():
        refs.setdefault(ref, text)
    return _conjunction(parts)


def _conjunction(terms: list[str]) -> str:
    return " AND ".join(f"({t})" if " " in t and len(terms) > 1 else t for t in terms)


def _paragraphs(text: str) -> Iterator[dict[str, str]]:
    """RFC 822 style paragraphs: field -> value, continuation lines kept (with a leading space)."""
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, ""
        elif line[:1] in (" ", "\t") and last:
            fields[last] += "\n" + line
        else:
            key, sep, rest = line.partition(":")
            if sep:
                last = key.strip().lower()
                fields[last] = rest.strip()
    if fields:
        yield fields


def debian_copyright(text: str, source: str) -> License | None:
    """The licence of a Debian package from its copyright file, or None (not machine-readable, or none said)."""
    if not _DEP5_FORMAT.match(text):
        return None
    paragraphs = list(_paragraphs(text))
    # Stand-alone License paragraphs (no Files:) give the texts of the names the Files use.
    texts: dict[str, str] = {}
    for paragraph in paragraphs:
        name, _, body = paragraph.get("license", "").partition("\n")
        if name.strip() and "files" not in paragraph and body.strip():
            texts.setdefault(name.strip().lower(), _body(body))
    refs: dict[str, str] = {}
    terms: list[str] = []
    for paragraph in paragraphs:
        if "files" not in paragraph or "license" not in paragraph:
            continue
        name, _, body = paragraph["license"].partition("\n")
        if body.strip():
            texts.setdefault(name.strip().lower(), _body(body))
        term = debian_expression(name, texts, refs, source)
        if term is not None and term not in terms:
            terms.append(term)
    if not terms:
        return None
    return License(normalize(_conjunction(sorted(terms))), dict(sorted(refs.items())))


def _body(text: str) -> str:
    """A DEP-5 field's continuation lines as text (`` .`` is an empty line)."""
    lines = [line[1:] if line.startswith(" ") else line for line in text.splitlines()]
    return "\n".join("" if line.strip() == "." else line for line in lines).strip()


def apk_license(value: str, package: str) -> License | None:
    """apk's ``L:`` (an SPDX expression in Alpine): kept when valid, else a ``LicenseRef-`` per unknown name."""
    from license_expression import ExpressionError

    value = value.strip()
    if not value:
        return None
    checked = _licensing().validate(value)
    if not checked.errors and checked.normalized_expression:
        return License(str(checked.normalized_expression), {})
    refs: dict[str, str] = {}
    source = f"the apk database entry of {package}"
    words = value.replace("(", " ( ").replace(")", " ) ").split()
    operators = ("and", "or", "with")
    out = [w.upper() if w.lower() in operators else w if w in "()" else _symbol(w, {}, refs, source) for w in words]
    try:
        expression = str(_licensing().parse(" ".join(out)))
    except ExpressionError:
        ref = license_ref(value)
        return License(ref, {ref: f"The licence {value!r} in {source}."})
    return License(expression, dict(sorted(refs.items())))


def normalize(expression: str) -> str:
    """The expression as license-expression prints it (one canonical spelling), LicenseRefs allowed."""
    from license_expression import ExpressionError

    try:
        return str(_licensing().parse(expression))
    except ExpressionError:
        return expression
