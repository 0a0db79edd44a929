"""Everything that decides a reproducible image's bytes, collected into its ``BuildManifest``."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from nexlab.builder.manifest import BuildManifest
from nexlab.builder.output import sha256_file
from nexlab.builder.reproducible import epoch
from nexlab.run import run

if TYPE_CHECKING:
    from docker.models.images import Image

    from nexlab.builder.container import SetupInputs


def collect_inputs(
    image: str,
    base: Image,
    setup: SetupInputs,
    size: int,
    network: str,
    source_date_epoch: int | None,
    free: int | None = None,
    slim: tuple[str, ...] = (),
) -> BuildManifest:
    """The manifest of a build not made yet: every input, the UUID and hash seed, no image sha256.

    ``free``: ``--size auto``'s free space (``size`` is then replaced by the size chosen);
    ``slim``: the slimming categories (in the digest when not empty)."""
    chosen, source = epoch.choose(base, source_date_epoch)
    digests = base.attrs.get("RepoDigests") or []
    return BuildManifest(
        base_image=image,
        base_image_id=base.id,
        base_image_digest=digests[0] if digests else base.id,
        agent_sha256=sha256_file(setup.agent),
        script_sha256=sha256_file(setup.script) if setup.script else None,
        service_sha256=sha256_file(setup.service),
        setup_sha256=sha256_file(Path(str(resources.files("nexlab.builder.assets") / "setup.sh"))),
        e2fsprogs=e2fsprogs_version(),
        source_date_epoch=chosen,
        epoch_source=source,
        size=size,
        network=network,
        init=setup.init.value,
        free=free,
        slim=slim,
    )


_VERSION = re.compile(r"mke2fs (\S+)")


def e2fsprogs_version() -> str:
    """``1.47.0``: part of the inputs, because each release lays out the same tree differently."""
    result = run(["mke2fs", "-V"])
    match = _VERSION.search(result.stderr + result.stdout)
    return match.group(1) if match else "unknown"
