"""Screenshots for the README: the builder panel after a full build, and the audit report.

    .venv/bin/python -m tests.make_screenshots [REPORTS_DIR]

Needs root, Docker, the local Debian base and Chromium (``make demo`` runs it
after writing the example reports). Writes ``screenshots/builder-panel.png``
and ``screenshots/audit-report.png`` under REPORTS_DIR (default: reports/).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from nexlab.ui import BuilderPanel
from nexlab.ui.builder import STEPS
from nexlab.ui.static import static_page
from tests.chromium import chromium
from tests.conftest import DEBIAN_TAG, REPO, SAMPLE_AGENT


def builder_panel_page(workdir: Path) -> Path:
    """Run every step of a panel, then write its final state as a static page."""
    with BuilderPanel(base=DEBIAN_TAG, agent=SAMPLE_AGENT, output=workdir / "rootfs.ext4", size="200MiB") as panel:
        for step in STEPS:
            panel.buttons[step].click()
            if panel.error_text:
                raise SystemExit(f"the panel failed at {step}: {panel.error_text}")
        page = workdir / "builder-panel.html"
        page.write_text(static_page(panel, "nexlab builder panel"), encoding="utf-8")
    return page


def main(argv: list[str]) -> int:
    reports = Path(argv[0]) if argv else REPO / "reports"
    audit_report = reports / "audit-demo.html"
    if not audit_report.is_file():
        raise SystemExit(f"{audit_report} is missing: run make demo first")
    shots = reports / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nexlab-shots-") as tmp, chromium(width=1100, height=900) as browser:
        for page, name, height in (
            (builder_panel_page(Path(tmp)), "builder-panel.png", 2600),
            (audit_report, "audit-report.png", 1500),
        ):
            loaded = browser.load(page)
            if loaded.errors or loaded.external_requests:
                raise SystemExit(f"{page}: {loaded.errors + loaded.external_requests}")
            browser.screenshot(shots / name, full_page=True, max_height=height)
            print(shots / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
