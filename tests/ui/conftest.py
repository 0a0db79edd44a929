"""Real images for the widget tests: two plain builds of the sample agent, made once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def two_plain_images(
    tmp_path_factory: pytest.TempPathFactory, debian_base: str, sample_agent: Path
) -> tuple[Path, Path]:
    """Two plain (mount) builds of the same inputs: their content is equal, their bytes are not."""
    from nexlab import build_rootfs

    root = tmp_path_factory.mktemp("ui-images")
    built = [
        build_rootfs(root / name, agent=sample_agent, image=debian_base, size="200MiB").output
        for name in ("a.ext4", "b.ext4")
    ]
    return built[0], built[1]


@pytest.fixture(scope="session")
def plain_audit(two_plain_images: tuple[Path, Path]) -> Any:
    import nexlab

    return nexlab.audit(two_plain_images[0])
