"""HTML (self-contained, escaped, with treemaps), Markdown, mtree and the notebook API."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import libarchive

import nexlab
from nexlab.report import html as audit_html
from nexlab.report import markdown as audit_markdown
from tests.conftest import nexlab_cli


def test_html_is_self_contained(debian_audit) -> None:  # type: ignore[no-untyped-def]
    page = audit_html(debian_audit)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    lowered = page.lower()
    for forbidden in ("http://", "https://", "<script", "<link", "<iframe", "<img", "url(", "@import", "src="):
        assert forbidden not in lowered, forbidden
    # Two pictures: space by directory and by package, each with boxes and tooltips.
    assert page.count("<svg width='1000'") == 2
    assert page.count("<rect") > 20 and "<title>/usr: " in page
    assert "coreutils" in page and "Findings" in page


def test_html_escapes_what_the_image_names(bad_audit) -> None:  # type: ignore[no-untyped-def]
    page = audit_html(bad_audit)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img" not in page
    assert "bad-\\xff-name" in page  # an undecodable byte is shown as ls -b would, not crashed on
    assert "sev-critical" in page


def test_repr_html_is_a_fragment(debian_audit) -> None:  # type: ignore[no-untyped-def]
    fragment = debian_audit._repr_html_()
    assert "<html" not in fragment and "<svg" in fragment and "<style>" in fragment


def test_markdown_summary(bad_audit) -> None:  # type: ignore[no-untyped-def]
    text = audit_markdown(bad_audit)
    assert text.startswith("# nexlab audit")
    assert "| critical | `root-password-known` |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header_cells = {line.count(" | ") for line in rows if line.startswith("| severity")}
    assert header_cells  # the findings table is there
    assert "`/usr/local/share/<img src=x onerror=alert(1)>`" in text  # code span: shown, not rendered


def _unvis(name: str) -> bytes:
    # mtree writes bytes outside printable ASCII (and space, #, \, =) as \ooo.
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), name.encode("latin-1"))


def test_mtree_manifest(bad_rootfs: Path, bad_audit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "bad.mtree"
    done = nexlab_cli("audit", str(bad_rootfs), "--mtree", str(manifest), "--no-fsck")
    assert done.returncode == 0, done.stderr
    digests: dict[bytes, str] = {}
    kinds: dict[bytes, str] = {}
    for line in manifest.read_text("latin-1").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, *keywords = line.split()
        fields = dict(k.split("=", 1) for k in keywords)
        path = b"/" if name == "." else _unvis(name)[1:]
        kinds[path] = fields["type"]
        if "sha256digest" in fields:
            digests[path] = fields["sha256digest"]
    ours = {r.path.encode("utf-8", "surrogateescape"): r for r in bad_audit.files}
    assert set(kinds) == set(ours)
    files = {p: r.sha256 for p, r in ours.items() if r.type == "file"}
    # Every file has its digest, hardlinks included (tar-fed mtree loses those).
    assert digests == files
    assert kinds[b"/usr/local/share/dup/a-hardlink"] == "file"
    assert kinds[b"/bin"] == "link"
    # libarchive reads it back.
    with libarchive.file_reader(str(manifest), format_name="mtree") as archive:
        assert sum(1 for _ in archive) == len(ours)


def test_notebook_api(debian_rootfs: Path) -> None:
    result = nexlab.audit(debian_rootfs, hash=False, fsck_check=False)
    assert isinstance(result, nexlab.Audit)
    frame = result.inventory
    assert len(frame) == len(result.files)
    assert frame.loc["/usr/bin/ls", "package"] == "coreutils"
    assert "filesystem:" in str(result)


def test_json_path_does_not_import_pandas(debian_rootfs: Path, tmp_path: Path) -> None:
    """Neither --json nor the report files (--json-file, --html, --markdown) build the DataFrame."""
    files: list[str] = []
    for flag, name in (("--json-file", "a.json"), ("--html", "a.html"), ("--markdown", "a.md")):
        files += [flag, str(tmp_path / name)]
    code = (
        "import sys, io, contextlib\n"
        "from nexlab.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main(['audit', {str(debian_rootfs)!r}, '--json', *{files!r}])\n"
        "assert rc == 0, rc\n"
        "print('pandas' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert all((tmp_path / name).stat().st_size > 1000 for name in ("a.json", "a.html", "a.md"))
