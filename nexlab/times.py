"""Times as nexlab prints them: UTC, ISO 8601, whole seconds, whatever the host's time zone."""

from __future__ import annotations

import datetime as dt


def iso_utc(epoch: int) -> str:
    """``1700000000`` -> ``"2023-11-14T22:13:20Z"``; a value no calendar holds comes back as the number."""
    try:
        return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(epoch)
