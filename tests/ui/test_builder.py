"""The builder panel, driven headless against the real engine: click, then check the state it reached."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from nexlab.ui import BuilderPanel
from nexlab.ui.builder import STEPS
from tests.conftest import loop_devices_for, mounts_containing

pytestmark = [pytest.mark.docker, pytest.mark.root]


def only(step: str | None, *also: str) -> dict[str, bool]:
    """The enabled-state map where just ``step`` (and ``also``) can be pressed."""
    return {s: s == step or s in also for s in STEPS}


def panel_for(tmp_path: Path, agent: Path, image: str) -> BuilderPanel:
    return BuilderPanel(base=image, agent=agent, output=tmp_path / "rootfs.ext4", size="200MiB")


def test_steps_enable_one_after_another(tmp_path: Path, debian_base: str, sample_agent: Path) -> None:
    panel = panel_for(tmp_path, sample_agent, debian_base)
    try:
        assert panel.enabled() == only("allocate")
        expected_after = {
            "allocate": only("mkfs", "allocate"),
            "mkfs": only("mount", "allocate"),
            "mount": only("populate"),  # a mount is held: no restart until it is released
            "populate": only("unmount"),
            "unmount": only("allocate"),
        }
        # Record every state change the kernel would send to the page while populate runs.
        log_updates: list[str] = []
        fractions: list[float] = []
        panel.progress.log.observe(lambda change: log_updates.append(change["new"]), names="value")
        panel.progress.bar.observe(lambda change: fractions.append(change["new"]), names="value")
        for step in STEPS:
            panel.buttons[step].click()
            assert panel.error_text == "", f"{step}: {panel.error_text}"
            assert panel.enabled() == expected_after[step], step
            assert f"✔ {step}" in panel.results[step].value
            assert panel.progress.bar.value == 1.0
            assert panel.progress.bar.bar_style == "success"
            assert step in panel.progress.status.value
        # The container's output streamed into the live log line by line as it ran, not at the end.
        log = panel.progress.log.value
        assert "nexlab-step: 1/" in log and "setup done" in log
        assert len(log_updates) >= len(log.splitlines()) > 5
        assert [u.count("\n") for u in log_updates] == sorted(u.count("\n") for u in log_updates)
        partial = [f for f in fractions if 0 < f < 1]
        assert len(partial) >= 3 and partial == sorted(partial)  # the setup's steps moved the bar
        assert panel.step_results["allocate"].size == 200 * 2**20
        assert panel.step_results["populate"].files > 100
        assert panel.step_results["unmount"].fsck_clean
        assert "clean" in panel.results["unmount"].value
        image = tmp_path / "rootfs.ext4"
        assert image.stat().st_size == 200 * 2**20
        assert loop_devices_for(image) == ""
    finally:
        panel.close()


def test_bad_agent_is_one_red_line_and_nothing_is_created(tmp_path: Path, debian_base: str) -> None:
    panel = panel_for(tmp_path, tmp_path / "no-such-agent", debian_base)
    try:
        panel.buttons["allocate"].click()
        assert panel.error_text.startswith("✘ allocate: agent ")
        assert "does not exist" in panel.error_text
        assert "Traceback" not in panel.error.value
        assert "color:#b00020" in panel.error.value
        assert panel.enabled() == only("allocate")
        assert panel.progress.bar.bar_style == "danger"
        assert panel.results["allocate"].value == ""
        assert not (tmp_path / "rootfs.ext4").exists()
    finally:
        panel.close()


def test_failed_populate_releases_the_mount(tmp_path: Path, debian_base: str, sample_agent: Path) -> None:
    panel = panel_for(tmp_path, sample_agent, debian_base)
    image = tmp_path / "rootfs.ext4"
    try:
        for step in ("allocate", "mkfs", "mount"):
            panel.buttons[step].click()
        assert panel.mount is not None
        mount_point = str(panel.mount.path)
        assert mounts_containing(mount_point)
        panel.base.value = "nexlab/no-such-base:never"
        panel.buttons["populate"].click()
        assert panel.error_text.startswith("✘ populate: ")
        assert "no-such-base" in panel.error_text
        assert panel.mount is None
        assert mounts_containing(mount_point) == []
        assert loop_devices_for(image) == ""
        # Back to mount: the filesystem is made; populate needs it mounted again.
        assert panel.enabled() == only("mount", "allocate")
        panel.base.value = debian_base
        for step in ("mount", "populate", "unmount"):
            panel.buttons[step].click()
            assert panel.error_text == "", panel.error_text
        assert panel.step_results["unmount"].fsck_clean
    finally:
        panel.close()


def test_closing_the_panel_releases_an_open_mount(tmp_path: Path, debian_base: str, sample_agent: Path) -> None:
    image = tmp_path / "rootfs.ext4"
    with panel_for(tmp_path, sample_agent, debian_base) as panel:
        for step in ("allocate", "mkfs", "mount"):
            panel.buttons[step].click()
        mounted = panel.mount
        assert mounted is not None and mounted.mounted
        assert loop_devices_for(image) != ""
    assert not mounted.mounted
    assert mounts_containing(str(mounted.path)) == []
    assert loop_devices_for(image) == ""
    assert not mounted.path.exists()


def test_allocate_refuses_to_replace_unless_asked(tmp_path: Path, debian_base: str, sample_agent: Path) -> None:
    image = tmp_path / "rootfs.ext4"
    image.write_bytes(b"keep me")
    with panel_for(tmp_path, sample_agent, debian_base) as panel:
        panel.buttons["allocate"].click()
        assert "already exists" in panel.error_text
        assert image.read_bytes() == b"keep me"
        panel.overwrite.value = True
        panel.buttons["allocate"].click()
        assert panel.error_text == ""
        assert image.stat().st_size == 200 * 2**20
        assert panel.enabled() == only("mkfs", "allocate")


def test_interrupt_during_populate_releases_the_mount(tmp_path: Path, debian_base: str, sample_agent: Path) -> None:
    """A real SIGINT (what Jupyter's "interrupt the kernel" sends) while the container streams its output."""
    image = tmp_path / "rootfs.ext4"
    with panel_for(tmp_path, sample_agent, debian_base) as panel:
        for step in ("allocate", "mkfs", "mount"):
            panel.buttons[step].click()
        assert panel.mount is not None
        mount_point = str(panel.mount.path)
        sent: list[bool] = []

        def interrupt_once(_change: object) -> None:
            if not sent:
                sent.append(True)
                os.kill(os.getpid(), signal.SIGINT)

        panel.progress.log.observe(interrupt_once, names="value")
        panel.buttons["populate"].click()
        assert sent
        assert panel.error_text == "✘ populate: interrupted"
        assert panel.mount is None
        assert mounts_containing(mount_point) == []
        assert loop_devices_for(image) == ""
        assert panel.enabled() == only("mount", "allocate")
    # populate removes its container on the way out, whatever stopped it. (Other tests may be
    # populating at the same time: look only for a container with our mount point bound.)
    import docker

    client = docker.from_env()
    try:
        ours = [
            c.short_id
            for c in client.containers.list(all=True, filters={"label": "org.nexlab.role=populate"})
            if any(m.get("Source") == mount_point for m in c.attrs.get("Mounts", []))
        ]
    finally:
        client.close()
    assert ours == []
