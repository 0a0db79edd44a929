"""The notebooks are tested artifacts: each runs top to bottom against the real engine.

A kernelspec pointing at this interpreter is written to a private JUPYTER_PATH,
so the notebooks run in the venv whatever kernels the machine has.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import Browser
from tests.conftest import REPO, mounts_containing, remove_tree, require

NOTEBOOKS = REPO / "notebooks"
KERNEL = "nexlab-venv"
#: The issue's budget per notebook, here.
MAX_SECONDS = 180


def committed_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    names = [p.name for p in committed_notebooks()]
    assert names[:3] == ["01-build-step-by-step.ipynb", "02-audit-and-budget.ipynb", "03-reproducibility.ipynb"]


@pytest.mark.parametrize("path", committed_notebooks(), ids=lambda p: p.stem)
def test_committed_notebook_is_stripped(path: Path) -> None:
    """Outputs stay out of git: they hold machine paths, timings and megabytes of HTML."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = dirty_cells(nb)
    assert dirty == [], f"{path.name}: cells {dirty} have outputs; clear them before committing"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and 'BASE_IMAGE = "nexlab/debian:bookworm"' in params[0].source


def dirty_cells(nb: Any) -> list[int]:
    """Indexes of code cells that carry outputs or an execution count."""
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and (cell.outputs or cell.execution_count)]


@pytest.fixture(scope="session")
def kernel_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "nexlab (venv)", "language": "python"})
    )
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(root)
    try:
        yield root
    finally:
        if saved is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = saved


def parameterized(path: Path, workdir: Path, **parameters: Any) -> Any:
    """The notebook with WORKDIR (and ``parameters``) set in a cell after its parameter cell."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    overrides = {"WORKDIR": f"Path({str(workdir)!r})", **{k: repr(v) for k, v in parameters.items()}}
    # The parameter cell only names its WORKDIR (the next cell makes it): nothing to remove.
    source = "# injected by the test\n" + "\n".join(f"{k} = {v}" for k, v in overrides.items())
    injected = nbformat.v4.new_code_cell(source)
    injected["id"] = "injected"
    nb.cells.insert(index + 1, injected)
    return nb


def execute(path: Path, workdir: Path, *, again: tuple[str, ...] = (), **parameters: Any) -> tuple[Any, float]:
    """Run the notebook with WORKDIR (and ``parameters``) injected after its parameter cell, then
    run again, in the same kernel and in this order, the cells whose source contains one of ``again``
    (as a user re-running a cell would; a cell that fails then fails the run)."""
    from nbclient import NotebookClient

    nb = parameterized(path, workdir, **parameters)
    client = NotebookClient(
        nb, kernel_name=KERNEL, timeout=MAX_SECONDS, resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.monotonic()
    with client.setup_kernel():
        client.execute(cleanup_kc=False)
        for fragment in again:
            index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and fragment in c.source)
            client.execute_cell(nb.cells[index], index)
    return nb, time.monotonic() - start


#: Cells of notebook 01 run again once it ran to its end: re-running them must work.
AGAIN_01 = (
    "allocated = allocate(",
    "made = mkfs(image)",
    "m = mount(image)",
    "checked = unmount(m)",
    "panel = BuilderPanel(",
    "panel.build()",
)


def outputs(nb: Any, mime: str) -> str:
    """All of one MIME type's output text, in cell order."""
    found: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if mime in data:
                found.append(data[mime])
            if mime == "text/plain" and out.get("output_type") == "stream":
                found.append(out["text"])
    return "\n".join(found)


def no_mounts_left(workdir: Path) -> None:
    # A notebook that failed half way may have left its mount: tell, don't leak.
    leftover = mounts_containing(str(workdir))
    for line in leftover:
        subprocess.run(["umount", "--detach-loop", line.split()[1]], check=False, capture_output=True)
    assert leftover == [], f"the notebook left mounts behind: {leftover}"


Executed = Callable[[str], tuple[Any, float]]


@pytest.fixture(scope="session")
def executed(kernel_path: Path, tmp_path_factory: pytest.TempPathFactory, debian_base: str) -> Executed:
    """Each notebook run once by nbclient (on first use), shared by the tests that read its outputs."""
    done: dict[str, tuple[Any, float]] = {}

    def run(stem: str) -> tuple[Any, float]:
        if stem not in done:
            workdir = tmp_path_factory.mktemp(stem)
            try:
                again = AGAIN_01 if stem == "01-build-step-by-step" else ()
                done[stem] = execute(NOTEBOOKS / f"{stem}.ipynb", workdir, again=again, BASE_IMAGE=debian_base)
            finally:
                no_mounts_left(workdir)
            remove_tree(workdir)  # the outputs are in the notebook; its images are not read again
        return done[stem]

    return run


@pytest.mark.docker
@pytest.mark.root
def test_01_build_step_by_step(executed: Executed) -> None:
    nb, seconds = executed("01-build-step-by-step")
    html = outputs(nb, "text/html")
    for step in ("allocate", "mkfs", "mount", "populate", "unmount", "build"):
        assert f"✔ {step}</b>" in html, f"no result for {step}"
    assert "e2fsck -fn" in html and "clean" in html
    assert "/usr" in html  # the "what changed" table after populate
    assert "application/vnd.jupyter.widget-view+json" in outputs_types(nb)
    text = outputs(nb, "text/plain")
    assert "paths," in text and "findings" in text
    assert seconds < MAX_SECONDS
    # The stripped-notebook check would catch this notebook had it been committed executed.
    assert len(dirty_cells(nb)) > 10
    # After Run All the panel shows a whole build (panel.build() ran in the next cell, and the
    # panel's saved output was updated to its final state), not an empty or closed panel.
    assert "BuilderPanel: " in text and "(steps done: allocate, mkfs, mount, populate, unmount)" in text
    # populate() and build_rootfs() showed their progress without being asked.
    assert "WidgetProgress: populate 100%" in text and "WidgetProgress: unmount 100%" in text
    assert "children=" not in text
    # The cells run again after the end (the clean-up left what they need; the new panel built).
    counts = {c.source.splitlines()[-1]: c.execution_count for c in nb.cells if c.cell_type == "code"}
    last = max(n for n in counts.values() if n)
    assert counts["panel.build()"] == last


@pytest.mark.docker
@pytest.mark.root
def test_01_builds_for_arm64_with_one_parameter(kernel_path: Path, tmp_path: Path, debian_base: str) -> None:
    """ARCH = "arm64" in the parameter cell: the steps, build_rootfs and the panel build arm64 images."""
    from nexlab.boot.boot import image_architecture

    try:
        nb, _seconds = execute(NOTEBOOKS / "01-build-step-by-step.ipynb", tmp_path, ARCH="arm64")
    finally:
        no_mounts_left(tmp_path)
    html = outputs(nb, "text/html")
    for step in ("allocate", "mkfs", "mount", "populate", "unmount", "build"):
        assert f"✔ {step}</b>" in html, f"no result for {step}"
    for name in ("rootfs.ext4", "one-call.ext4", "panel.ext4"):
        assert image_architecture(tmp_path / name) == "aarch64", name


def outputs_types(nb: Any) -> set[str]:
    return {mime for cell in nb.cells for out in cell.get("outputs", []) for mime in out.get("data", {})}


@pytest.mark.docker
@pytest.mark.root
def test_02_audit_and_budget(executed: Executed) -> None:
    nb, seconds = executed("02-audit-and-budget")
    html = outputs(nb, "text/html")
    text = outputs(nb, "text/plain")
    assert html.count("<svg") >= 3  # the report's treemaps and the two drawn in the notebook
    assert "allocated bytes by package" in html
    assert "/usr/lib" in html and "setuid" in html
    assert "workload MiB" in html and "image size needed MiB" in html
    assert "packages," in text and "findings" in text
    assert "application/vnd.jupyter.widget-view+json" in outputs_types(nb)
    assert seconds < MAX_SECONDS


@pytest.mark.docker
@pytest.mark.root
def test_03_reproducibility(executed: Executed) -> None:
    nb, seconds = executed("03-reproducibility")
    html = outputs(nb, "text/html")
    text = outputs(nb, "text/plain")
    assert "fs-uuid" in html and "fs-hash-seed" in html  # why the plain builds differ
    assert "/etc/nex-build-info" in html
    assert "bit-identical: True" in text
    assert "diffoscope compared 1 file(s)" in text
    assert "nex-build-info" in text and "built " in text  # the excerpt shows the two stamps
    assert seconds < MAX_SECONDS


# -- a saved notebook, reopened -----------------------------------------------------------------

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: What each notebook's saved widget outputs must read as without their kernel.
READABLE = {
    "01-build-step-by-step": ("✔ allocate", "✔ populate", "✔ unmount", ">Build</button>"),
    "02-audit-and-budget": ("Findings", "setuid", "/usr/lib", "Space by directory"),
    "03-reproducibility": ("fs-uuid", "/etc/nex-build-info"),
}
#: Text that only a widget tree's repr or a view without its model shows.
UNREADABLE = ("children=(", "Loading widget", "model not found", "Error displaying widget")


def saved_untrusted(nb: Any, path: Path) -> Any:
    """``nb`` written as JupyterLab saves it by default, without widget state, and read back."""
    import copy

    import nbformat
    from nbformat.sign import NotebookNotary

    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)  # nbclient stores it; JupyterLab does not unless asked to
    nbformat.write(nb, path)
    reopened = nbformat.read(path, as_version=4)
    assert "widgets" not in reopened.metadata, "no widget state: the views have no model to show"
    notary = NotebookNotary(db_file=":memory:", secret=os.urandom(32))
    assert not notary.check_signature(reopened), "never signed here: untrusted"
    return reopened


def widget_outputs(nb: Any) -> list[dict[str, Any]]:
    return [out["data"] for cell in nb.cells for out in cell.get("outputs", []) if WIDGET_VIEW in out.get("data", {})]


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.parametrize("stem", sorted(READABLE))
def test_a_saved_untrusted_notebook_keeps_readable_reports(executed: Executed, stem: str, tmp_path: Path) -> None:
    reopened = saved_untrusted(executed(stem)[0], tmp_path / f"{stem}.ipynb")
    shown = widget_outputs(reopened)
    assert shown, "the notebook shows widgets"
    for data in shown:
        # Where the view cannot be shown (untrusted, no kernel, a static viewer) the HTML is.
        assert data.get("text/html", "").strip(), f"a widget without a static fallback: {data['text/plain']}"
        assert len(data["text/plain"]) < 300 and "\n" not in data["text/plain"]
        assert "<script" not in data["text/html"]
    html = "\n".join(data["text/html"] for data in shown)
    for expected in READABLE[stem]:
        assert expected in html, f"{stem}: the saved widgets do not show {expected!r}"
    everything = outputs(reopened, "text/plain") + outputs(reopened, "text/html")
    assert not [bad for bad in UNREADABLE if bad in everything]
    # Every inline SVG has its picture beside it: a sanitizer drops <svg>, never an <img> data URI.
    all_html = outputs(reopened, "text/html")
    live = all_html.count("<div class='nx-svg-live' hidden='hidden' style='display:none'><svg")
    assert live == all_html.count("<img class='nx-svg-copy'")
    assert all_html.count("<svg") == live, "an inline SVG without its picture"
    if stem == "02-audit-and-budget":
        assert live >= 4  # the report's two treemaps and the two drawn in the notebook (and the explorer's)


# -- real JupyterLab in headless Chromium -------------------------------------------------------


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    browser: Browser

    def open(self, name: str, *, kernel: bool = True) -> None:
        # A workspace of its own, reset: only this notebook is open (none restored from before).
        workspace = re.sub(r"\W", "-", name)
        self.browser.goto(f"{self.url}/lab/workspaces/{workspace}/tree/{name}?reset&token={self.token}", settle=1)
        self.browser.wait_for(f"{NOTEBOOK} !== null && {NOTEBOOK}.querySelectorAll('.jp-Cell').length > 3", timeout=90)
        if kernel:
            self.browser.wait_for("document.body.textContent.includes('| Idle')", timeout=90)

    def run_all(self, timeout: float) -> None:
        """Restart the kernel and run every cell, as the toolbar's ⏩ does, and wait for the last."""
        self.browser.click(f'{SHOWN} .jp-NotebookPanel-toolbar [data-command="notebook:restart-run-all"]')
        self.browser.wait_for("document.querySelector('.jp-Dialog .jp-mod-accept') !== null", timeout=30)
        self.browser.click(".jp-Dialog .jp-mod-accept")
        self.browser.wait_for(f"{PROMPTS}.some(p => p === '[*]:')", timeout=60)
        # Done when nothing runs or waits any more (a cell that fails stops the rest: said below).
        self.browser.wait_for(f"!{PROMPTS}.some(p => p === '[*]:')", timeout=timeout, every=1)
        prompts = self.browser.evaluate(PROMPTS)
        failed = self.browser.evaluate(
            f"Array.from({NOTEBOOK}.querySelectorAll('[data-mime-type=\"application/vnd.jupyter.stderr\"]'))"
            ".map(e => e.textContent.slice(-800)).join('\\n')"
        )
        assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), f"not every cell ran: {prompts}\n{failed}"

    def text(self) -> str:
        # textContent, not innerText: cells out of view are not laid out but are in the document.
        return str(self.browser.evaluate(f"{NOTEBOOK}.textContent"))

    def close_all(self) -> None:
        """Shut the kernels down (a notebook's kernel holds no mount, but memory)."""
        request = urllib.request.Request(f"{self.url}/api/sessions?token={self.token}")
        for session in json.loads(urllib.request.urlopen(request, timeout=10).read()):
            delete = urllib.request.Request(
                f"{self.url}/api/sessions/{session['id']}?token={self.token}", method="DELETE"
            )
            urllib.request.urlopen(delete, timeout=30).read()


#: The notebook shown (the one tab open), as a CSS selector and as a JavaScript expression.
SHOWN = ".jp-NotebookPanel:not(.lm-mod-hidden)"
NOTEBOOK = f"document.querySelector('{SHOWN} .jp-Notebook')"
#: Every code cell's prompt, "[*]:" while it runs, "[N]:" once it ran.
PROMPTS = f"Array.from({NOTEBOOK}.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')).map(p => p.textContent.trim())"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, kernel_path: Path) -> Iterator[Lab]:
    """One JupyterLab server (private config, data, settings) and one headless Chromium, per session."""
    from tests.chromium import chromium, chromium_binary

    require(chromium_binary() is not None, "chromium (apt-get install chromium)")
    require(importlib.util.find_spec("jupyterlab") is not None, "jupyterlab (pip install -e '.[test]')")
    base = tmp_path_factory.mktemp("jupyterlab")
    root, settings = base / "root", base / "settings"
    root.mkdir()
    # No news, no update check, every cell in the page (no windowing): what is checked is what is there.
    for plugin, values in {
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    token, port = os.urandom(12).hex(), _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
    }
    argv = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]  # fmt: skip
    log = (base / "server.log").open("wb")
    server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    failed = (base / "server.log").read_text()[-2000:]
                    raise RuntimeError(f"JupyterLab did not start: {failed}") from None
                time.sleep(0.3)
        with chromium(width=1280, height=1000, loopback=True) as browser:
            yield Lab(url, token, root, browser)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


#: Widgets each notebook shows live: a progress per build, the panel, the explorer, the viewer.
LIVE_WIDGETS = {"01-build-step-by-step": 3, "02-audit-and-budget": 2, "03-reproducibility": 5}


def _page_errors(browser: Browser) -> list[str]:
    # An aborted request is JupyterLab cancelling its own polling on navigation, not a fault.
    return [e for e in browser.messages().errors if "ERR_ABORTED" not in e and "debugger state" not in e]


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(LIVE_WIDGETS))
def test_jupyterlab_runs_the_notebook_with_live_widgets(lab: Lab, debian_base: str, stem: str) -> None:
    import nbformat

    workdir = lab.root / f"work-{stem}"
    workdir.mkdir()
    nbformat.write(
        parameterized(NOTEBOOKS / f"{stem}.ipynb", workdir, BASE_IMAGE=debian_base), lab.root / f"{stem}.ipynb"
    )
    try:
        lab.open(f"{stem}.ipynb")
        lab.run_all(timeout=MAX_SECONDS * 2)
        browser = lab.browser
        live = browser.evaluate("document.querySelectorAll('.jp-OutputArea-output .widget-box').length")
        assert live >= LIVE_WIDGETS[stem], f"{live} widgets rendered live"
        text = lab.text()
        assert not [bad for bad in UNREADABLE if bad in text], "a widget that did not render"
        assert "Traceback" not in text
        # Trusted (run here): the reports' inline SVGs show live (tooltips), their picture copies do not.
        every = "Array.from(document.querySelectorAll('.jp-OutputArea-output {}')).every(e => e.offsetParent {} null)"
        assert browser.evaluate(every.format(".nx-svg-live", "!==") + " && " + every.format(".nx-svg-copy", "==="))
        if stem != "03-reproducibility":  # the audit report's treemaps
            assert browser.evaluate("document.querySelectorAll('.jp-OutputArea-output .nx-svg-live svg rect').length")
        if stem == "01-build-step-by-step":
            assert "✔ unmount" in text  # panel.build() in the cell after the panel
            _click_build(lab)
        assert _page_errors(browser) == []
    finally:
        lab.close_all()
        no_mounts_left(workdir)
    remove_tree(workdir)


def _click_build(lab: Lab) -> None:
    """Click the panel's Build as a user: the bar must move while it runs, the panel end built."""
    browser = lab.browser
    status = (
        "Array.from(document.querySelectorAll('.widget-html-content'))"
        ".map(e => e.textContent).filter(t => /^(populate|mkfs|mount|allocate|unmount|✔|✘)/.test(t)).join('|')"
    )
    built = (
        "Array.from(document.querySelectorAll('.widget-button'))"
        ".some(b => b.textContent.trim() === 'Build' && b.classList.contains('mod-success') && !b.disabled)"
    )
    browser.click(".widget-button", text="Build")
    browser.wait_for(
        "Array.from(document.querySelectorAll('.widget-button'))"
        ".some(b => b.textContent.trim() === 'Build' && b.disabled)",
        timeout=20,
    )
    seen: list[str] = []
    deadline = time.monotonic() + MAX_SECONDS
    while not browser.evaluate(built):
        assert time.monotonic() < deadline, f"the panel's Build did not finish: {seen[-3:]}"
        seen.append(str(browser.evaluate(status)))
        time.sleep(0.2)
    copying = {s for s in seen if "copy " in s}
    assert len(copying) >= 2, f"the bar did not move during the copy: {sorted(set(seen))}"
    log = browser.evaluate(
        "Array.from(document.querySelectorAll('.widget-textarea textarea')).map(t => t.value).join('\\n')"
    )
    assert "nexlab-step: 1/6" in log, "the live log shows the container's output"
    assert "✔ unmount" in lab.text()


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(READABLE))
def test_jupyterlab_shows_a_saved_untrusted_notebook_readable(lab: Lab, executed: Executed, stem: str) -> None:
    name = f"saved-{stem}.ipynb"
    saved_untrusted(executed(stem)[0], lab.root / name)
    try:
        lab.open(name, kernel=False)
        browser = lab.browser
        browser.wait_for("document.querySelectorAll('.jp-OutputArea-output').length > 3", timeout=60)
        text = lab.text()
        # Untrusted (and without widget state): no view is made, the static HTML is shown instead.
        assert browser.evaluate("document.querySelectorAll('.jp-OutputArea-output .widget-box').length") == 0
        for expected in READABLE[stem]:
            if not expected.startswith("<") and not expected.startswith(">"):
                assert expected in text, f"{stem}: {expected!r} is not shown"
        assert not [bad for bad in UNREADABLE if bad in text]
        # The pictures of the SVGs show (loaded, laid out) and no SVG text dump is visible.
        images = "Array.from(document.querySelectorAll('.jp-OutputArea-output img'))"
        browser.wait_for(f"{images}.every(i => i.complete)", timeout=30)
        pictures = browser.evaluate(f"{images}.map(i => [i.naturalWidth > 0, i.alt])")
        assert all(ok for ok, _ in pictures), pictures
        if stem != "03-reproducibility":  # the audit report's treemaps and bars
            assert pictures
        if stem == "02-audit-and-budget":
            assert sum(1 for _, alt in pictures if "allocated bytes by" in alt) >= 2
        # The sanitizer dropped <svg> and kept its text: that dump must not show (nor a copy be missing).
        live_svg = "Array.from(document.querySelectorAll('.jp-OutputArea-output .nx-svg-live'))"
        assert browser.evaluate(f"{live_svg}.every(e => e.offsetParent === null && !e.querySelector('svg'))")
        copies = "document.querySelectorAll('.jp-OutputArea-output img.nx-svg-copy').length"
        assert browser.evaluate(f"{live_svg}.length") == browser.evaluate(copies)
        shown = str(
            browser.evaluate(
                "Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(o => o.innerText).join('\\n')"
            )
        )
        assert not re.search(r"\(dpkg\): \d", shown), "the text of a treemap is shown"
        assert _page_errors(browser) == []
        shots = os.environ.get("NEXLAB_SCREENSHOTS")  # to look at it: a directory for the pictures
        if shots:
            browser.evaluate(
                f"{images}.filter(i => /allocated bytes by/.test(i.alt)).concat({images})[0]?.scrollIntoView()"
            )
            browser.screenshot(Path(shots) / f"untrusted-{stem}.png")
    finally:
        lab.close_all()
