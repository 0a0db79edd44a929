"""The package as a user installs it: py.typed shipped, ``dir(nexlab)`` the public API alone."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import nexlab
from tests.conftest import REPO

PUBLIC = sorted([*nexlab.__all__, "__version__"])


def test_dir_lists_the_public_api_alone() -> None:
    assert nexlab.__all__ == sorted(nexlab._EXPORTS)
    assert dir(nexlab) == PUBLIC
    assert not {"Any", "annotations", "importlib", "typing", "_typing", "TYPE_CHECKING"} & set(dir(nexlab))
    for name in nexlab.__all__:
        assert getattr(nexlab, name) is not None, name
    for sub in ("nexlab.audit", "nexlab.report", "nexlab.cli.main"):  # each binds itself on nexlab
        importlib.import_module(sub)

    assert dir(nexlab) == PUBLIC


def test_import_nexlab_imports_nothing_else() -> None:
    # The names for type checkers are imported under TYPE_CHECKING only: `import nexlab` stays cheap.
    code = "import sys, nexlab\nprint(sorted(m for m in sys.modules if m.startswith('nexlab')))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['nexlab']"


def test_py_typed_is_installed() -> None:
    assert (resources.files("nexlab") / "py.typed").is_file()


def test_the_wheel_ships_py_typed_and_the_assets(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources.
    source = tmp_path / "source"
    shutil.copytree(REPO / "nexlab", source / "nexlab", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("nexlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "nexlab/py.typed" in names
    assert "nexlab/__main__.py" in names and "nexlab/report/plots.py" in names
    assert "nexlab/builder/assets/setup.sh" in names
