"""The static HTML of a panel's state: what the README screenshot is made from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nexlab.ui import BuilderPanel
from nexlab.ui.static import static_page
from tests.chromium import Browser, chromium, chromium_binary, colour_stats
from tests.conftest import require


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require(chromium_binary() is not None, "chromium (apt-get install chromium)")
    with chromium(width=1000, height=800) as page:
        yield page


def test_panel_state_as_a_static_page(tmp_path: Path, browser: Browser) -> None:
    # A wrong agent path fails before anything needs root or Docker.
    with BuilderPanel(agent=tmp_path / "missing-agent", output=tmp_path / "rootfs.ext4", size="64MiB") as panel:
        panel.buttons["allocate"].click()
        page = tmp_path / "panel.html"
        page.write_text(static_page(panel, "panel"), encoding="utf-8")
    text = page.read_text()
    assert "<script" not in text and "http" not in text
    loaded = browser.load(page)
    assert loaded.errors == [] and loaded.external_requests == []
    buttons = browser.evaluate("Array.from(document.querySelectorAll('button')).map(b => [b.textContent, b.disabled])")
    assert buttons == [
        ["allocate", False],
        ["mkfs", True],
        ["mount", True],
        ["populate", True],
        ["unmount", True],
        ["Build", False],
    ]
    inputs = browser.evaluate("Array.from(document.querySelectorAll('input[type=text]')).map(i => i.value)")
    assert str(tmp_path / "missing-agent") in inputs and "64MiB" in inputs
    error = browser.evaluate("document.body.innerText")
    assert "✘ allocate: agent" in error and "does not exist" in error
    colours, inked = colour_stats(browser.screenshot())
    assert colours > 8 and inked > 0.02
