"""Which time the image carries: the given epoch, else the base image's creation time.

The base image's creation time changes exactly when the base does, is the same
on every machine that has that image, and is never in the future (clamped to now).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import TYPE_CHECKING

from nexlab.errors import InputError

if TYPE_CHECKING:
    from docker.models.images import Image

GIVEN = "given"
BASE_CREATED = "base image creation time"

_ZERO = "source date epoch 0 cannot be reproduced: e2fsprogs takes a fake time of 0 as none and writes the clock"
_CREATED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")


def check_given(source_date_epoch: int | None) -> None:
    """Reject a bad ``--source-date-epoch`` before the engine is asked anything."""
    if source_date_epoch is not None and source_date_epoch < 0:
        raise InputError(f"source date epoch {source_date_epoch} is negative")
    if source_date_epoch == 0:
        # e2fsprogs reads E2FSPROGS_FAKE_TIME=0 as "not set" and writes the wall clock into the
        # superblock, so two builds at epoch 0 would differ (measured).
        raise InputError(_ZERO, hint="use --source-date-epoch 1 or later")


def choose(base: Image, source_date_epoch: int | None) -> tuple[int, str]:
    """(epoch, where it came from): the given one, else ``default_epoch(base)``."""
    if source_date_epoch is None:
        return default_epoch(base), BASE_CREATED
    return source_date_epoch, GIVEN


def default_epoch(base: Image) -> int:
    """The base image's creation time (whole seconds), never later than now."""
    created = str(base.attrs.get("Created") or "")
    match = _CREATED.match(created)
    if not match:
        raise InputError(f"base image {base.id[:19]} has no creation time", hint="pass --source-date-epoch")
    when = dt.datetime.fromisoformat(match.group(1)).replace(tzinfo=dt.UTC)
    seconds = min(int(when.timestamp()), int(time.time()))
    if seconds <= 0:
        # docker load of a config without "created" gives 0001-01-01: no usable time (see check_given).
        raise InputError(f"base image {base.id[:19]} has no creation time after 1970", hint="pass --source-date-epoch")
    return seconds
