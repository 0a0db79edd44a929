"""Every widget's mimebundle: the live view, and beside it the report as static HTML and one line of text.

A saved notebook shows ``text/html`` wherever the live view cannot be (reopened
without the kernel, untrusted, nbconvert, a static viewer): it must be the
report, readable without a script, never the widget tree's repr.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from nexlab.ui import AuditExplorer, BuilderPanel, DiffViewer, WidgetProgress
from nexlab.ui.static import WIDGET_VIEW


def _bundle(shown: Any) -> dict[str, Any]:
    bundle = shown._repr_mimebundle_()
    assert bundle is not None
    assert set(bundle) == {WIDGET_VIEW, "text/html", "text/plain"}
    assert bundle[WIDGET_VIEW]["model_id"]
    text = bundle["text/plain"]
    assert "\n" not in text and len(text) < 300 and "children=" not in text, text
    assert "<script" not in bundle["text/html"]
    return bundle


def _pictures(html: str) -> list[str]:
    """The SVG pictures a sanitized notebook keeps: ``<img>`` data URIs, decoded."""
    found = re.findall(r"<img class='nx-svg-copy'[^>]* src='data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)'>", html)
    return [base64.b64decode(data).decode("utf-8") for data in found]


def test_the_panel_reads_as_its_last_state(tmp_path: Path) -> None:
    # A wrong agent path fails before anything needs root or Docker.
    with BuilderPanel(agent=tmp_path / "missing-agent", output=tmp_path / "rootfs.ext4", size="64MiB") as panel:
        before = _bundle(panel)
        assert "✘" not in before["text/html"]
        panel.buttons["allocate"].click()
        after = _bundle(panel)
        assert after[WIDGET_VIEW] == before[WIDGET_VIEW]
        assert "✘ allocate: agent" in after["text/html"] and "does not exist" in after["text/html"]
        assert ">Build</button>" in after["text/html"] and ">allocate</button>" in after["text/html"]
        assert after["text/plain"].startswith(f"BuilderPanel: {tmp_path / 'rootfs.ext4'} (steps done: none;")
    assert panel._repr_mimebundle_ is None  # closed: no view left to show, as ipywidgets does
    panel._nexlab_display_ids = ["shown-before"]  # as if displayed: a refresh after close sends nothing
    panel.refresh_fallback()
    assert panel.build() is False  # and a closed panel still says why it cannot build


def test_the_bar_and_the_log_sit_right_under_the_buttons(tmp_path: Path) -> None:
    with BuilderPanel(agent=tmp_path / "agent", output=tmp_path / "rootfs.ext4") as panel:
        children = list(panel.children)
        buttons = next(i for i, c in enumerate(children) if panel.build_button in getattr(c, "children", ()))
        assert children[buttons + 1] is panel.progress.widget
        assert list(children[buttons].children) == [*panel.buttons.values(), panel.build_button]


def test_allocate_clears_the_log_of_the_last_build(tmp_path: Path) -> None:
    with BuilderPanel(agent=tmp_path / "missing-agent", output=tmp_path / "rootfs.ext4") as panel:
        panel.progress.log_line("a line of the last build")
        panel.results["unmount"].value = "<b>✔ unmount</b>"
        panel.buttons["allocate"].click()
        assert panel.progress.log.value == "" and list(panel.progress.lines) == []
        assert panel.results["unmount"].value == ""


def test_build_stops_at_the_first_failure_and_says_so(tmp_path: Path) -> None:
    with BuilderPanel(agent=tmp_path / "missing-agent", output=tmp_path / "rootfs.ext4") as panel:
        assert panel.build() is False
        assert panel.error_text.startswith("✘ allocate: agent")
        assert panel.completed == 0 and not panel.build_button.disabled
        assert not (tmp_path / "rootfs.ext4").exists()


def test_the_progress_reads_as_its_bar_status_and_log() -> None:
    progress = WidgetProgress()
    with progress.step("populate", "container"):
        progress.fraction(0.5, "copy 60 of ~120 MiB")
        progress.log_line("nexlab-step: 2/6 user nex")
        bundle = _bundle(progress)
    assert "populate: copy 60 of ~120 MiB" in bundle["text/html"]
    assert "nexlab-step: 2/6 user nex" in bundle["text/html"] and "<progress value='0.500'" in bundle["text/html"]
    assert bundle["text/plain"] == "WidgetProgress: populate 50%"
    assert "✔ populate" in _bundle(progress)["text/html"]


@pytest.mark.docker
@pytest.mark.root
def test_the_explorer_reads_as_the_audit_report_with_its_treemaps(plain_audit: Any) -> None:
    bundle = _bundle(AuditExplorer(plain_audit))
    html = bundle["text/html"]
    assert "findings" in html and "/usr" in html and "allocated bytes by directory" in html.lower()
    pictures = _pictures(html)
    treemaps = [p for p in pictures if "<rect" in p and "<text" in p]
    assert len(treemaps) >= 2, "the report's treemaps as pictures a sanitizer keeps"
    assert all(p.startswith("<svg xmlns='http://www.w3.org/2000/svg'") for p in pictures)
    assert bundle["text/plain"] == (
        f"AuditExplorer: {plain_audit.image} ({len(plain_audit.inventory)} paths, "
        f"{len(plain_audit.packages)} packages, {len(plain_audit.findings)} findings)"
    )


@pytest.mark.docker
@pytest.mark.root
def test_the_diff_viewer_reads_as_the_diff_report(two_plain_images: tuple[Path, Path]) -> None:
    viewer = DiffViewer.from_images(*two_plain_images)
    bundle = _bundle(viewer)
    assert "fs-uuid" in bundle["text/html"]  # a cause of the plain builds' difference
    assert bundle["text/plain"].startswith(f"DiffViewer: {two_plain_images[0]} vs {two_plain_images[1]} (")


def test_the_panel_offers_the_architecture(tmp_path: Path) -> None:
    agent = tmp_path / "agent"
    agent.write_text("#!/bin/sh\n")
    with BuilderPanel(agent=agent, output=tmp_path / "rootfs.ext4") as panel:
        choice = panel.inputs["arch"]
        assert list(choice.options) == ["auto", "amd64", "arm64"] and choice.value == "auto"
        assert panel.spec().arch is None  # auto: the agent's ELF machine, else the host's
        choice.value = "arm64"
        assert panel.spec().arch == "arm64"
    with BuilderPanel(agent=agent, output=tmp_path / "rootfs.ext4", arch="arm64") as panel:
        assert panel.spec().arch == "arm64"
