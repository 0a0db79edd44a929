"""Is a crypt(3) hash the hash of a well-known password?

We re-hash each candidate with the hash's own salt and method and compare.
The system's libcrypt (libxcrypt on Debian, which knows yescrypt, Debian's
default since bookworm) is called through ctypes; Python's ``crypt`` module is
deprecated and gone in 3.13. Without libcrypt, ``openssl passwd`` covers the
MD5/SHA-256/SHA-512 methods.
"""

from __future__ import annotations

import functools
import hmac
from typing import TYPE_CHECKING

from nexlab.errors import NexlabError
from nexlab.run import run

if TYPE_CHECKING:
    import ctypes

#: Passwords an attacker tries first on a console: the nex recipe's root:root among them.
WELL_KNOWN = ("root", "toor", "password", "admin", "nex", "firecracker", "changeme", "123456")

_OPENSSL_METHODS = {"1": "-1", "5": "-5", "6": "-6"}


@functools.cache
def _libcrypt() -> ctypes.CDLL | None:
    import ctypes.util  # here: a build's service check imports the rules, never a password check

    name = ctypes.util.find_library("crypt")
    if not name:
        return None
    try:
        library = ctypes.CDLL(name)
    except OSError:
        return None
    library.crypt.restype = ctypes.c_char_p
    library.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return library


def _rehash(password: str, setting: str) -> str | None:
    library = _libcrypt()
    if library is not None:
        out = library.crypt(password.encode(), setting.encode())
        # libxcrypt returns "*0"/"*1" (never a valid hash) for a method it lacks.
        if out and not out.startswith(b"*"):
            return out.decode("ascii", "replace")
    parts = setting.split("$")
    if len(parts) >= 4 and parts[1] in _OPENSSL_METHODS:
        salt = parts[2]
        if salt.startswith("rounds="):
            return None  # openssl passwd cannot take a rounds parameter
        try:
            result = run(
                ["openssl", "passwd", _OPENSSL_METHODS[parts[1]], "-salt", salt, "-stdin"],
                input=password.encode() + b"\n",
            )
        except NexlabError:
            return None
        return result.stdout.strip()
    return None


def well_known_password(hashed: str, candidates: tuple[str, ...] = WELL_KNOWN) -> tuple[str | None, bool]:
    """(the matching candidate or None, whether the check could run at all)."""
    if not hashed.startswith("$") and len(hashed) != 13:
        return None, True  # locked ("*", "!"), or not a crypt hash we know
    checked = False
    for candidate in candidates:
        rehashed = _rehash(candidate, hashed)
        if rehashed is None:
            continue
        checked = True
        if hmac.compare_digest(rehashed, hashed):
            return candidate, True
    return None, checked
