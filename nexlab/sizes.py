"""Sizes as users write them: ``157286400``, ``"150MiB"``, ``"1G"``, ``"200M"``."""

from __future__ import annotations

import re

from nexlab.errors import InputError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: int | str) -> int:
    """Bytes in ``value``.

    A bare letter (``K``, ``M``, ``G``, ``T``) means a power of 1024, as in
    ``truncate`` and ``dd``; ``MB``/``GB`` are powers of 1000 and ``MiB``/``GiB``
    powers of 1024.
    """
    if isinstance(value, bool):
        raise InputError(f"invalid size {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise InputError(f"size must be positive, got {value}")
        return value
    match = _SIZE.match(str(value))
    if not match or match.group(2).lower() not in _UNITS:
        raise InputError(f"invalid size {value!r}", hint='use bytes or a unit, e.g. "150MiB", "1G"')
    number = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if number < 1:
        raise InputError(f"size must be positive, got {value!r}")
    return int(number)


def format_size(num_bytes: int | float) -> str:
    """``157286400`` -> ``"150.0 MiB"``."""
    value = float(num_bytes)
    if abs(value) < 1024:
        return f"{value:.0f} B"
    for unit in ("KiB", "MiB"):
        value /= 1024
        if abs(value) < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} GiB"
