"""The reports as a user sees them: opened in headless Chromium, offline.

Each report (audit, diff, repro) is generated here from real built images with
the CLI, then loaded in Chromium with DNS mapped to nothing: it must load with
no console error, exception or failed request, fetch nothing from the network,
show its plot or tables, and screenshot as a picture rather than a blank page.
The committed examples in reports/ (``make demo``) get the same checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chromium import Browser, chromium, chromium_binary, colour_stats
from tests.conftest import REPO, nexlab_cli, require, scratch

REPORTS = REPO / "reports"
KINDS = ("audit", "diff", "repro")
#: What each kind of report must show once rendered: a JS expression that is true.
SHOWS = {
    # The treemaps: inline SVG with a box per directory / package.
    "audit": "document.querySelectorAll('svg rect').length > 20 && document.title.startsWith('nexlab audit')",
    "diff": "document.querySelector('.verdict') !== null && document.querySelectorAll('table tr').length > 3",
    "repro": "document.querySelector('.verdict') !== null && document.querySelectorAll('table tr').length >= 3",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require(chromium_binary() is not None, "chromium (apt-get install chromium)")
    with chromium(width=1200, height=900) as page:
        yield page


@pytest.fixture(scope="module")
def generated(module_tmp: Path, debian_base: str, sample_agent: Path) -> dict[str, Path]:
    """audit, diff and repro reports made by the CLI from images built here. Returns kind -> HTML path."""
    out = scratch(module_tmp, "reports")
    base = ["--agent", str(sample_agent), "--image", debian_base, "--size", "200MiB"]
    for name, extra in (("a.ext4", []), ("slim.ext4", ["--script", str(REPORTS / "demo-slim.sh")])):
        built = nexlab_cli("build", *base, *extra, "-o", str(out / name), "-q")
        assert built.returncode == 0, built.stderr
    stem = out / "audit-test"
    audited = nexlab_cli(
        "audit",
        str(out / "a.ext4"),
        "--html",
        f"{stem}.html",
        "--json-file",
        f"{stem}.json",
        "--markdown",
        f"{stem}.md",
    )
    assert audited.returncode == 0, audited.stderr
    stem = out / "diff-test"
    diffed = nexlab_cli(
        "diff",
        str(out / "a.ext4"),
        str(out / "slim.ext4"),
        "--json",
        "--html",
        f"{stem}.html",
        "--markdown",
        f"{stem}.md",
    )
    assert diffed.returncode == 1, diffed.stderr  # 1: the content differs, as it must
    (out / "diff-test.json").write_text(diffed.stdout)
    # --plain: two quick mount builds, which differ: the report has causes to show.
    repro = nexlab_cli("repro", *base, "--plain", "--report", str(out), "--name", "test", "-q")
    assert repro.returncode == 1, repro.stderr
    return {kind: out / f"{kind}-test.html" for kind in KINDS}


def check_rendered(browser: Browser, page: Path, kind: str) -> None:
    loaded = browser.load(page)
    assert loaded.errors == [], f"{page.name}: {loaded.errors}"
    assert loaded.external_requests == [], f"{page.name} fetches from the network: {loaded.external_requests}"
    assert browser.evaluate(SHOWS[kind]), f"{page.name} does not show its {kind} content"
    colours, inked = colour_stats(browser.screenshot())
    assert colours > 8 and inked > 0.02, f"{page.name} screenshots as (nearly) blank: {colours} colours, {inked:.1%}"


def check_siblings(page: Path) -> None:
    markdown = page.with_suffix(".md").read_text(encoding="utf-8")
    assert markdown.startswith("#") and len(markdown) > 100
    data = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
    assert isinstance(data, dict) and data


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.parametrize("kind", KINDS)
def test_generated_report_renders(browser: Browser, generated: dict[str, Path], kind: str) -> None:
    check_rendered(browser, generated[kind], kind)
    check_siblings(generated[kind])


def committed_examples() -> list[Path]:
    return sorted(REPORTS.glob("*.html"))


def test_every_kind_has_a_committed_example() -> None:
    assert {p.name for p in committed_examples()} >= {f"{kind}-demo.html" for kind in KINDS}


@pytest.mark.parametrize("page", committed_examples(), ids=lambda p: p.stem)
def test_committed_example_renders(browser: Browser, page: Path) -> None:
    kind = page.name.split("-", 1)[0]
    check_rendered(browser, page, kind)
    check_siblings(page)


def test_audit_treemap_boxes_have_tooltips(browser: Browser) -> None:
    browser.load(REPORTS / "audit-demo.html")
    titles = browser.evaluate("Array.from(document.querySelectorAll('svg g > title')).map(t => t.textContent)")
    assert any(t.startswith("/usr:") for t in titles)
    assert any("(dpkg)" in t for t in titles)


def test_a_broken_page_is_caught(browser: Browser, tmp_path: Path) -> None:
    """The checks above mean something: a page with an error and a fetch fails them."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><body><img src='https://example.com/logo.png'>"
        "<script>console.error('boom'); missing();</script></body></html>"
    )
    loaded = browser.load(page)
    assert "https://example.com/logo.png" in loaded.external_requests
    assert any("boom" in e for e in loaded.errors)
    assert any("missing is not defined" in e for e in loaded.errors)
    blank = tmp_path / "blank.html"
    blank.write_text("<html><body></body></html>")
    browser.load(blank)
    assert colour_stats(browser.screenshot()) == (1, 0.0)
