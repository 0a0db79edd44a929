"""The surroundings each run gets, and a context manager that applies and restores them.

The builds run in this process, so umask, TZ, locale and the working directory
are the process's own: what a host-side step (staging directory modes, mkfs,
debugfs) would pick up from the user's shell. Time varies because runs are
at least a second apart; the build path because each run writes elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from nexlab.repro.model import Variation

_UMASKS = (0o022, 0o077, 0o002)
_TIMEZONES = ("UTC", "Pacific/Auckland", "America/St_Johns")
_LOCALES = ("C.UTF-8", "fr_CH.UTF-8", "tr_TR.UTF-8")
_PATHS = ("build", "a/deeper/build/path", "b path with spaces")


def variation(index: int, workdir: Path) -> Variation:
    """Run 0 is the reference; each later run changes every variable at once."""
    n = index % len(_UMASKS)
    return Variation(
        build_path=str(workdir / f"run-{index}" / _PATHS[n]),
        umask=_UMASKS[n],
        tz=_TIMEZONES[n],
        locale=_LOCALES[n],
    )


@contextlib.contextmanager
def applied(v: Variation) -> Iterator[Path]:
    """Apply ``v`` to this process for the block (the build directory is created and entered)."""
    directory = Path(v.build_path)
    directory.mkdir(parents=True, exist_ok=True)
    keys = ("TZ", "LC_ALL", "LANG")
    saved_env = {key: os.environ.get(key) for key in keys}
    saved_cwd = os.getcwd()
    saved_umask = os.umask(v.umask)
    try:
        os.environ["TZ"] = v.tz
        os.environ["LC_ALL"] = os.environ["LANG"] = v.locale
        time.tzset()
        os.chdir(directory)
        yield directory
    finally:
        os.chdir(saved_cwd)
        os.umask(saved_umask)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        time.tzset()
