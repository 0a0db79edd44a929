"""``--slim`` on real builds: Debian (nexlab/debian:bookworm) and Alpine 3.19, both build paths.

The savings per category are what the audit called reclaimable before; afterwards the
audit finds nothing reclaimable there and no package file missing; dpkg leaves the
excluded paths out of a later install; the diff explains every change; the reproducible
path stays bit-identical. Images are built once per module.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexlab.audit import Audit, audit
from nexlab.builder.manifest import BuildManifest, manifest_path
from nexlab.builder.mount import mount
from nexlab.builder.output import sha256_file
from nexlab.builder.pipeline import build_rootfs
from nexlab.builder.results import BuildResult
from nexlab.diff import diff
from nexlab.slim import CATEGORIES, DEFAULT, DPKG_FILTERS, RECORD, SlimResult, category_of
from tests.conftest import SAMPLE_AGENT, scratch

SIZE = "200MiB"
#: A .deb with a file of each kind slim removes, and its copyright file; installed with dpkg -i.
PROBE = r"""set -eu
d=/tmp/probe
mkdir -p $d/DEBIAN $d/usr/share/doc/nexlab-probe $d/usr/share/man/man1 $d/usr/share/locale/de/LC_MESSAGES $d/usr/bin
printf 'Package: nexlab-probe\nVersion: 1.0\nArchitecture: all\nMaintainer: nexlab <t@example.invalid>\n' \
  > $d/DEBIAN/control
echo 'Description: probe' >> $d/DEBIAN/control
echo readme > $d/usr/share/doc/nexlab-probe/README
echo copyright > $d/usr/share/doc/nexlab-probe/copyright
echo man > $d/usr/share/man/man1/nexlab-probe.1
echo mo > $d/usr/share/locale/de/LC_MESSAGES/nexlab-probe.mo
printf '#!/bin/sh\n' > $d/usr/bin/nexlab-probe
chmod 755 $d/usr/bin/nexlab-probe
dpkg-deb --root-owner-group --build $d /tmp/probe.deb >/dev/null
dpkg -i /tmp/probe.deb >/dev/null
rm -rf $d /tmp/probe.deb /tmp/probe.sh
"""


def _slim_step(result: BuildResult) -> SlimResult:
    [step] = [s for s in result.steps if isinstance(s, SlimResult)]
    return step


def _reclaimable(report: Audit) -> dict[str, tuple[int, int]]:
    return {label: (size, files) for label, size, files in report.budget.reclaimable}


@pytest.fixture(scope="module")
def built(module_tmp: Path) -> Path:
    return scratch(module_tmp, "slim")


@pytest.fixture(scope="module")
def debian_plain(debian_base: str, built: Path) -> tuple[Path, Audit]:
    image = built / "plain.ext4"
    build_rootfs(image, agent=SAMPLE_AGENT, image=debian_base, size=SIZE)
    return image, audit(image, fsck_check=False)


@pytest.fixture(scope="module")
def debian_slim(debian_base: str, built: Path) -> tuple[BuildResult, Audit]:
    image = built / "slim.ext4"
    result = build_rootfs(image, agent=SAMPLE_AGENT, image=debian_base, size=SIZE, slim=",".join(DEFAULT))
    return result, audit(image)


def test_savings_are_what_the_audit_called_reclaimable(debian_plain, debian_slim) -> None:  # type: ignore[no-untyped-def]
    before = _reclaimable(debian_plain[1])
    result, after_audit = debian_slim
    step = _slim_step(result)
    assert result.slim == ("caches", "docs", "man", "locales")
    for saving in step.savings:
        label = CATEGORIES[saving.category].label
        assert (saving.bytes, saving.files) == before[label], saving.category
    # The measurement, within the drift of a base rebuilt since: docs ~10, man ~6, locales ~32 MiB.
    mib = {s.category: s.bytes / 2**20 for s in step.savings}
    assert 5 < mib["docs"] < 15 and 4 < mib["man"] < 10 and 25 < mib["locales"] < 40, mib
    after = _reclaimable(after_audit)
    for name in DEFAULT:
        assert after[CATEGORIES[name].label] == (0, 0), name
    assert after["logs"] == before["logs"]  # not asked for
    # What the image needs stays: copyright files, C.UTF-8, debconf's database, the man sections.
    paths = {r.path for r in after_audit.files}
    assert "/usr/share/doc/bash/copyright" in paths and "/usr/lib/locale/C.utf8/LC_CTYPE" in paths
    assert "/var/cache/debconf/config.dat" in paths and "/usr/share/man/man1" in paths
    assert after_audit.budget.nex_free_bytes > debian_plain[1].budget.nex_free_bytes + 40 * 2**20


def test_slimmed_image_is_as_sound_as_the_plain_one(debian_plain, debian_slim) -> None:  # type: ignore[no-untyped-def]
    result, report = debian_slim
    assert {f.code for f in report.findings} == {f.code for f in debian_plain[1].findings}
    assert "package-files-missing" not in {f.code for f in report.findings}
    assert all(getattr(s, "fsck_clean", True) for s in result.steps)
    # Package attribution: the same packages, each smaller by exactly its files slim covers.
    slimmed: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    for record in debian_plain[1].files:
        covered = category_of(record.path)
        if not record.package or record.type == "dir" or covered is None or covered.name not in DEFAULT:
            continue
        if (record.package, record.inode) not in seen:
            seen.add((record.package, record.inode))
            slimmed[record.package] = slimmed.get(record.package, 0) + record.allocated
    before = {p.name: p.size for p in debian_plain[1].packages}
    after = {p.name: p.size for p in report.packages}
    assert before.keys() == after.keys()
    assert after == {name: size - slimmed.get(name, 0) for name, size in before.items()}
    assert slimmed["bash"] > 0 and after["bash"] < before["bash"]
    by_path = {r.path: r for r in report.files}
    assert by_path[DPKG_FILTERS].package is None and by_path[RECORD].uid == 0


@pytest.fixture
def slim_copy(debian_slim, tmp_path: Path) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    copy = tmp_path / "copy.ext4"
    subprocess.run(["cp", "--sparse=always", str(debian_slim[0].output), str(copy)], check=True)
    yield copy


def test_dpkg_honours_the_exclusions(slim_copy: Path) -> None:
    """A .deb installed into the slimmed image afterwards: dpkg leaves out what slim removed."""
    with mount(slim_copy) as mounted:
        filters = (mounted.path / DPKG_FILTERS.lstrip("/")).read_text()
        assert "path-exclude=/usr/share/doc/*" in filters and "path-include=/usr/share/doc/*/copyright" in filters
        (mounted.path / "tmp/probe.sh").write_text(PROBE)
        # Our own image from the offline base: its dpkg, run in a chroot of the mounted tree.
        done = subprocess.run(["chroot", str(mounted.path), "sh", "/tmp/probe.sh"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        root = mounted.path
        assert (root / "usr/bin/nexlab-probe").is_file()
        assert (root / "usr/share/doc/nexlab-probe/copyright").is_file()
        assert not (root / "usr/share/doc/nexlab-probe/README").exists()
        assert not (root / "usr/share/man/man1/nexlab-probe.1").exists()
        assert not (root / "usr/share/locale/de").exists()
    # dpkg lists the left-out files (as it does in Debian's slim images); the audit knows why they are gone.
    report = audit(slim_copy, hash=False, fsck_check=False)
    assert "package-files-missing" not in {f.code for f in report.findings}
    assert any(p.name == "nexlab-probe" for p in report.packages)


def test_without_the_exclusions_the_files_are_missing(slim_copy: Path) -> None:
    with mount(slim_copy) as mounted:
        (mounted.path / DPKG_FILTERS.lstrip("/")).unlink()
        (mounted.path / RECORD.lstrip("/")).unlink()
    report = audit(slim_copy, hash=False, fsck_check=False)
    [missing] = [f for f in report.findings if f.code == "package-files-missing"]
    assert "/usr/share/doc/bash/README.gz" in missing.paths or any(
        p.startswith("/usr/share/doc/bash/") for p in missing.paths
    )
    assert not any(p.endswith("/copyright") for p in missing.paths)


@pytest.fixture(scope="module")
def reproducible(debian_base: str, built: Path) -> dict[str, BuildResult]:
    import os

    results = {}
    for name, slim in (("plain", None), ("slim-1", "default"), ("slim-2", "default")):
        # The second slim build under another umask: what slim writes has its modes pinned.
        umask = os.umask(0o077 if name == "slim-2" else 0o022)
        try:
            results[name] = build_rootfs(
                built / f"r-{name}.ext4", agent=SAMPLE_AGENT, image=debian_base, size=SIZE, reproducible=True, slim=slim
            )
        finally:
            os.umask(umask)
    return results


def test_reproducible_slim_is_bit_identical(reproducible: dict[str, BuildResult]) -> None:
    one, two, plain = reproducible["slim-1"], reproducible["slim-2"], reproducible["plain"]
    assert one.sha256 == two.sha256 != plain.sha256
    manifest = BuildManifest.read(manifest_path(one.output))
    assert manifest.slim == ("caches", "docs", "man", "locales") and manifest.version == 3
    plain_manifest = BuildManifest.read(manifest_path(plain.output))
    assert plain_manifest.slim == () and plain_manifest.uuid != manifest.uuid
    saved = {s.category: s.files for s in _slim_step(one).savings}
    assert saved["docs"] > 0 and saved["locales"] > 0


def test_diff_explains_every_change(reproducible: dict[str, BuildResult]) -> None:
    result = diff(reproducible["plain"].output, reproducible["slim-1"].output)
    unexplained = [c for c in result.change_records if c.cause is None]
    assert not unexplained, unexplained[:10]
    assert not [f for f in result.filesystem if f.cause is None], result.filesystem
    causes = {c.cause for c in result.change_records}
    assert {"slimmed-docs", "slimmed-man", "slimmed-locales", "slim-record"} <= causes
    removed = {c.path for c in result.change_records if c.change == "removed"}
    assert "/usr/share/doc/bash/README.gz" in removed and "/usr/share/doc/bash/copyright" not in removed
    added = {c.path for c in result.change_records if c.change == "added"}
    assert added == {RECORD, DPKG_FILTERS, "/etc/nexlab"}


@pytest.fixture(scope="module")
def alpine_slim(alpine_base: str, is_root: bool, built: Path) -> tuple[BuildResult, Audit]:
    image = built / "alpine-slim.ext4"
    result = build_rootfs(image, agent=SAMPLE_AGENT, image=alpine_base, size="100MiB", slim="all")
    return result, audit(image, fsck_check=False)


def test_alpine_slim(alpine_slim) -> None:  # type: ignore[no-untyped-def]
    result, report = alpine_slim
    step = _slim_step(result)
    assert step.managers == ("apk",) and step.written == (RECORD,)
    assert all(size == 0 for _label, size, _files in report.budget.reclaimable)
    paths = {r.path for r in report.files}
    assert RECORD in paths and DPKG_FILTERS not in paths
    assert "package-files-missing" not in {f.code for f in report.findings}
    assert {p.name for p in report.packages} >= {"busybox", "musl", "apk-tools"}


def test_cli_prints_the_savings(debian_base: str, built: Path) -> None:
    from tests.conftest import nexlab_cli

    out = built / "cli.ext4"
    done = nexlab_cli(
        "build", "--agent", str(SAMPLE_AGENT), "--image", debian_base, "--size", SIZE, "--slim", "docs",
        "-o", str(out), "-q",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.strip().startswith("slimmed")]
    assert "docs" in line and "files" in line and "saved" in line and "man" not in line


def test_slim_an_existing_image(debian_plain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``nexlab slim IMAGE -o OUT``: a slimmed copy, the input untouched, the diff explained."""
    from tests.conftest import nexlab_cli

    image, before = debian_plain
    digest = sha256_file(image)
    out = tmp_path / "slimmed.ext4"
    done = nexlab_cli("slim", str(image), "-o", str(out), "-q")
    assert done.returncode == 0, done.stderr
    assert "saved" in done.stdout and sha256_file(image) == digest
    after = audit(out, hash=False)
    assert after.fsck.exit_code == 0
    reclaim = _reclaimable(after)
    assert _reclaimable(before)["docs"][0] > 0
    assert all(reclaim[CATEGORIES[name].label] == (0, 0) for name in DEFAULT)
    assert "package-files-missing" not in {f.code for f in after.findings}
    changes = diff(image, out, packages=False)
    assert not [c for c in changes.change_records if c.cause is None]
    assert not [f for f in changes.filesystem if f.cause is None], changes.filesystem
    assert [line for line in done.stderr.splitlines() if "error" in line] == []
    bad = nexlab_cli("slim", str(image), "-o", str(tmp_path / "x.ext4"), "--categories", "docs,nope")
    assert bad.returncode == 2 and [line for line in bad.stderr.splitlines() if "error:" in line] == [
        "nexlab slim: error: argument --categories: unknown slim category 'nope' "
        "(known: caches, docs, man, locales, logs, all, default)"
    ]
    assert not (tmp_path / "x.ext4").exists()


def test_normal_user_slims_to_the_same_bytes(reproducible: dict[str, BuildResult], debian_base: str) -> None:
    """As nobody (Docker socket only): what slim writes is root's in the image, as in root's build."""
    from tests.nobody import nexlab_as_nobody, nobody_directory

    with nobody_directory() as outdir:
        agent = outdir / "agent.sh"
        shutil.copyfile(SAMPLE_AGENT, agent)
        agent.chmod(0o755)
        output = outdir / "rootfs.ext4"
        result = nexlab_as_nobody(
            outdir, "build", "--reproducible", "--agent", str(agent), "--image", debian_base,
            "--size", SIZE, "--slim", "-o", str(output), "-q",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert output.stat().st_uid == 65534
        assert sha256_file(output) == reproducible["slim-1"].sha256


def test_the_step_function_takes_a_mount(slim_copy: Path) -> None:
    """The notebook's way: ``slim(m, ...)`` between populate and unmount, on the Mount itself."""
    from nexlab.slim import slim

    with mount(slim_copy) as mounted:
        (mounted.path / "var/log/nexlab-test.log").write_text("x" * 10000)
        result = slim(mounted, "logs")
        assert result.root == mounted.path and result.saving("logs").files >= 1
        assert not (mounted.path / "var/log/nexlab-test.log").exists() and (mounted.path / "var/log").is_dir()
        record = (mounted.path / RECORD.lstrip("/")).read_text()
    assert '"logs"' in record and '"docs"' in record  # added to what the build slimmed
    text = str(result)  # the step's result prints itself (nexlab.display)
    assert text.startswith("slim") and "logs" in text and "saved" in text
