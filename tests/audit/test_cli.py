"""`nexlab audit` as a user runs it: outputs, the CI gate, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import nexlab_cli


def test_summary_on_a_built_rootfs(debian_rootfs: Path) -> None:
    done = nexlab_cli("audit", str(debian_rootfs))
    assert done.returncode == 0, done.stderr
    for text in ("filesystem:", "nex can write (/tmp)", "largest workload binary", "top packages:", "coreutils"):
        assert text in done.stdout
    assert "e2fsck -fn: clean" in done.stdout


def test_demo_flags_write_every_report(debian_rootfs: Path, tmp_path: Path) -> None:
    # Exactly what `make demo` runs.
    html, js, md = tmp_path / "r" / "a.html", tmp_path / "r" / "a.json", tmp_path / "r" / "a.md"
    done = nexlab_cli("audit", str(debian_rootfs), "--html", str(html), "--json-file", str(js), "--markdown", str(md))
    assert done.returncode == 0, done.stderr
    assert json.loads(js.read_text())["filesystem"]["kind"] == "ext4"
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert md.read_text().startswith("# nexlab audit")
    for path in (html, js, md):
        assert f"wrote {path}" in done.stdout


def test_json_goes_alone_to_stdout(debian_rootfs: Path, tmp_path: Path) -> None:
    done = nexlab_cli("audit", str(debian_rootfs), "--json", "--markdown", str(tmp_path / "a.md"), "--fail-on", "high")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {"filesystem", "files", "packages", "budget", "findings"} <= set(data)
    assert "wrote" in done.stderr and "PASS fail-on high" in done.stderr


def test_gate_passes_on_a_good_image(debian_rootfs: Path) -> None:
    done = nexlab_cli(
        "audit", str(debian_rootfs), "--max-size", "1GiB", "--min-free", "1MiB", "--fail-on", "medium", "--no-hash"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("gate: PASS") == 3


def test_gate_fails_with_the_rules_that_failed(bad_rootfs: Path) -> None:
    done = nexlab_cli("audit", str(bad_rootfs), "--max-size", "100MiB", "--min-free", "1GiB", "--fail-on", "critical")
    assert done.returncode == 1
    failed = [line for line in done.stderr.splitlines() if line.startswith("gate: FAIL")]
    assert len(failed) == 3
    assert any("max-size" in line for line in failed)
    assert any("min-free" in line for line in failed)
    assert any("root-password-known" in line and "boot-writable" in line for line in failed)


def test_workload_answer(debian_rootfs: Path) -> None:
    fits = nexlab_cli("audit", str(debian_rootfs), "--workload", "1MiB", "--no-hash")
    assert "a 1.0 MiB binary fits" in fits.stdout
    too_big = nexlab_cli("audit", str(debian_rootfs), "--workload", "2GiB", "--no-hash")
    assert too_big.returncode == 0
    assert "does NOT fit" in too_big.stdout and "build with --size" in too_big.stdout


def _bad_inputs(tmp: Path, good: Path) -> dict[str, Path]:
    tmp.mkdir(exist_ok=True)
    (tmp / "dir").mkdir(exist_ok=True)
    (tmp / "text.ext4").write_text("not a filesystem\n" * 1000)
    (tmp / "zeros.ext4").write_bytes(bytes(1 << 20))  # libarchive would call this an empty tar
    with good.open("rb") as source:
        (tmp / "truncated.ext4").write_bytes(source.read(64 * 1024))
        source.seek(0)
        (tmp / "half.ext4").write_bytes(source.read(good.stat().st_size // 4))
    return {
        "missing": tmp / "missing.ext4",
        "directory": tmp / "dir",
        "text": tmp / "text.ext4",
        "zeros": tmp / "zeros.ext4",
        "truncated": tmp / "truncated.ext4",
        "quarter": tmp / "half.ext4",
    }


@pytest.mark.parametrize("case", ["missing", "directory", "text", "zeros", "truncated"])
def test_unreadable_input_exits_2_with_one_line(
    case: str, tmp_path_factory: pytest.TempPathFactory, bare_image: Path
) -> None:
    inputs = _bad_inputs(tmp_path_factory.mktemp(case), bare_image)
    done = nexlab_cli("audit", str(inputs[case]), "--json")
    assert done.returncode == 2, (done.stdout[-500:], done.stderr)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nexlab audit: error:")


@pytest.mark.parametrize(
    "args", [("--fail-on", "severe"), ("--max-size", "big"), ("--workload", "-5")], ids=["severity", "size", "workload"]
)
def test_bad_option_values_exit_2(bare_image: Path, args: tuple[str, str]) -> None:
    done = nexlab_cli("audit", str(bare_image), *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_truncated_image_is_an_error_or_a_warned_partial_answer(
    tmp_path_factory: pytest.TempPathFactory, bare_image: Path
) -> None:
    # The bare image's content sits in its first quarter: the reader can answer, but must say it is cut short.
    inputs = _bad_inputs(tmp_path_factory.mktemp("quarter"), bare_image)
    done = nexlab_cli("audit", str(inputs["quarter"]), "--json")
    assert "Traceback" not in done.stderr
    if done.returncode == 2:
        assert len(done.stderr.strip().splitlines()) == 1
    else:
        assert done.returncode == 0
        assert any("truncated" in w for w in json.loads(done.stdout)["warnings"])
