"""An audit of a real Debian build as pandas and Jupyter see it: short reprs, the DataFrames' shape and dtypes."""

from __future__ import annotations

import datetime as dt
import json
import stat
from typing import Any

import pandas as pd
from IPython.core.formatters import DisplayFormatter

from nexlab.display import REPR_LIMIT


def test_a_big_audit_shows_a_short_text_plain(debian_audit: Any) -> None:
    assert len(debian_audit.files) > 5000
    text = repr(debian_audit)
    assert len(text) <= REPR_LIMIT and "\n" not in text
    assert text.startswith(f"<Audit {debian_audit.image.name}: {len(debian_audit.files)} files, ")
    # What Jupyter saves as the output's text/plain (the 2.1 MB dataclass dump before).
    data, _ = DisplayFormatter().format(debian_audit)
    assert data["text/plain"] == text
    assert len(data["text/html"]) > 1000  # the report itself is still there, as HTML
    for value in (debian_audit.budget, debian_audit.fsck, *debian_audit.findings, *debian_audit.packages[:50]):
        assert len(repr(value)) <= REPR_LIMIT, repr(value)


def test_inventory_is_indexed_by_path_with_typed_columns(debian_audit: Any) -> None:
    frame = debian_audit.inventory
    assert frame.index.name == "path" and "path" not in frame.columns
    assert frame.index.is_unique and len(frame) == len(debian_audit.files)
    # The index level works where a column would (issue 12: these raised).
    assert list(frame.sort_values("path").index) == sorted(frame.index)
    assert frame.groupby("path").size().max() == 1
    assert isinstance(frame["type"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["package"].dtype, pd.CategoricalDtype)
    assert "coreutils" in frame["package"].cat.categories
    assert frame.loc["/usr/bin/ls", "package"] == "coreutils"
    assert frame.loc["/tmp", "mode_octal"] == "1777" and frame.loc["/tmp", "mode"] == 0o1777
    setuid = frame[(frame["mode"] & stat.S_ISUID) != 0]
    assert "/usr/bin/passwd" in setuid.index
    assert str(frame["mtime"].dt.tz) == "UTC"
    # Each row says what the JSON contract says, with the time as a datetime.
    files = {f["path"]: f for f in json.loads(json.dumps(debian_audit.to_json_dict()))["files"]}
    for path in ("/", "/usr/bin/ls", "/etc/hostname", "/tmp"):
        row, record = frame.loc[path], files[path]
        assert row["mtime"] == dt.datetime.fromtimestamp(record["mtime"], dt.UTC)
        assert (row["type"], int(row["mode"]), int(row["size"])) == (record["type"], record["mode"], record["size"])


def test_packages_and_findings_frames(debian_audit: Any) -> None:
    packages = debian_audit.packages_frame
    assert packages.index.name == "name" and len(packages) == len(debian_audit.packages)
    assert list(packages["size"]) == sorted(packages["size"], reverse=True)
    assert packages.loc["coreutils", "manager"] == "dpkg"
    assert isinstance(packages["manager"].dtype, pd.CategoricalDtype)
    findings = debian_audit.findings_frame
    assert list(findings["code"]) == [f.code for f in debian_audit.findings]
    assert findings["severity"].cat.ordered and findings["severity"].max() == debian_audit.worst().value
    assert any("/usr/bin/passwd" in paths for paths in findings["paths"])
