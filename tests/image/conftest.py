"""Session-scoped real images for the reader tests: made once, shared by every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.images import CASES, Case, make_image


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ext-images")


@pytest.fixture(scope="session")
def images(is_root: bool, image_dir: Path) -> Iterator[dict[str, Path]]:
    """Every case's image, built lazily the first time a test asks for it."""
    built: dict[str, Path] = _LazyImages(image_dir)  # type: ignore[assignment]
    yield built


class _LazyImages(dict):  # type: ignore[type-arg]
    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.workdir = workdir

    def __missing__(self, name: str) -> Path:
        case = next(c for c in CASES if c.name == name)
        image = make_image(case, self.workdir)
        self[name] = image
        return image


@pytest.fixture(params=[c.name for c in CASES])
def case(request: pytest.FixtureRequest, images: dict[str, Path]) -> tuple[Case, Path]:
    spec = next(c for c in CASES if c.name == request.param)
    return spec, images[spec.name]
