"""The notebooks are tested artifacts: each runs top to bottom against the real engine.

A kernelspec pointing at this interpreter is written to a private JUPYTER_PATH,
so the notebooks run in the venv whatever kernels the machine has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, mounts_containing

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


def execute(path: Path, workdir: Path, **parameters: Any) -> tuple[Any, float]:
    """Run the notebook with WORKDIR (and ``parameters``) injected after its parameter cell."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    overrides = {"WORKDIR": f"Path({str(workdir)!r})", **{k: repr(v) for k, v in parameters.items()}}
    # The parameter cell made its own temporary WORKDIR; remove it before replacing it.
    source = (
        "# injected by the test\n"
        "import shutil as _shutil\n"
        "_shutil.rmtree(WORKDIR, ignore_errors=True)\n" + "\n".join(f"{k} = {v}" for k, v in overrides.items())
    )
    injected = nbformat.v4.new_code_cell(source)
    injected["id"] = "injected"
    nb.cells.insert(index + 1, injected)
    client = NotebookClient(
        nb, kernel_name=KERNEL, timeout=MAX_SECONDS, resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.monotonic()
    client.execute()
    return nb, time.monotonic() - start


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


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # A notebook that failed half way may have left its mount: tell, don't leak.
    leftover = mounts_containing(str(tmp_path))
    for line in leftover:
        subprocess.run(["umount", "--detach-loop", line.split()[1]], check=False, capture_output=True)
    assert leftover == [], f"the notebook left mounts behind: {leftover}"


@pytest.mark.docker
@pytest.mark.root
def test_01_build_step_by_step(kernel_path: Path, workdir: Path, debian_base: str) -> None:
    nb, seconds = execute(NOTEBOOKS / "01-build-step-by-step.ipynb", workdir, BASE_IMAGE=debian_base)
    html = outputs(nb, "text/html")
    for step in ("allocate", "mkfs", "mount", "populate", "unmount", "build"):
        assert f"✔ {step}</b>" in html, f"no result for {step}"
    assert "e2fsck -fn" in html and "clean" in html
    assert "/usr" in html  # the "what changed" table after populate
    assert "application/vnd.jupyter.widget-view+json" in outputs_types(nb)
    assert "paths," in outputs(nb, "text/plain") and "findings" in outputs(nb, "text/plain")
    assert seconds < MAX_SECONDS
    # The stripped-notebook check would catch this notebook had it been committed executed.
    assert len(dirty_cells(nb)) > 10


def outputs_types(nb: Any) -> set[str]:
    return {mime for cell in nb.cells for out in cell.get("outputs", []) for mime in out.get("data", {})}


@pytest.mark.docker
@pytest.mark.root
def test_02_audit_and_budget(kernel_path: Path, workdir: Path, debian_base: str) -> None:
    nb, seconds = execute(NOTEBOOKS / "02-audit-and-budget.ipynb", workdir, BASE_IMAGE=debian_base)
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
def test_03_reproducibility(kernel_path: Path, workdir: Path, debian_base: str) -> None:
    nb, seconds = execute(NOTEBOOKS / "03-reproducibility.ipynb", workdir, BASE_IMAGE=debian_base)
    html = outputs(nb, "text/html")
    text = outputs(nb, "text/plain")
    assert "fs-uuid" in html and "fs-hash-seed" in html  # why the plain builds differ
    assert "/etc/nex-build-info" in html
    assert "bit-identical: True" in text
    assert "diffoscope compared 1 file(s)" in text
    assert "nex-build-info" in text and "built " in text  # the excerpt shows the two stamps
    assert seconds < MAX_SECONDS
