"""Every result, and every value a result holds, has a one-line ``repr()`` of at most ~200 characters.

Jupyter saves an output's text/plain beside its HTML: a dataclass's generated
repr of an Audit (every file record) made notebook 02 2.3 MB. The walk below
goes through every field of every result the presenters render (and the steps'
results the session cannot build), so a new bulky field or a new result class
without a summary fails here, not in a saved notebook.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest

import nexlab
from nexlab.builder.many import JobResult, ManyResult
from nexlab.builder.mount import Mount
from nexlab.builder.reproducible.agent import AgentResult
from nexlab.builder.reproducible.results import CacheResult, NormalizeResult, StagingResult, TimesResult
from nexlab.builder.resize import ResizeResult
from nexlab.builder.results import CompressResult, SizeResult, StepResult, UnmountResult
from nexlab.builder.slimming import SlimImageResult
from nexlab.display import REPR_LIMIT, Displayable, Summarized
from nexlab.slim.result import Saving, SlimResult
from tests.report.results import Results


def _all_modules() -> None:
    for info in pkgutil.walk_packages(nexlab.__path__, "nexlab."):
        importlib.import_module(info.name)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def _walk(value: Any, seen: dict[int, Any]) -> None:
    """Every dataclass value reachable from ``value`` (through fields, tuples, lists and dicts)."""
    if id(value) in seen or isinstance(value, str | bytes | int | float | Path | type(None)):
        return
    seen[id(value)] = value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _walk(getattr(value, f.name), seen)
    elif isinstance(value, tuple | list):
        for item in value:
            _walk(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            _walk(item, seen)


def _other_steps(tmp: Path) -> list[Any]:
    """The results a build makes that the report fixtures do not (their values as a real run gives)."""
    mount = Mount(tmp / "rootfs.ext4", "/dev/loop7", tmp / "mnt", 0.05, owns_dir=False)
    mount.mounted = False  # nothing was mounted: nothing to release when it is dropped
    savings = tuple(Saving(c, 400 + i, (8 << 20) + i, 3, 12288) for i, c in enumerate(("docs", "man", "locales")))
    jobs = [JobResult(f"agent-{n}-debian", "tcp://127.0.0.1:2376", tmp / f"{n}.ext4", 3.2, "a" * 64) for n in range(50)]
    slimmed = SlimResult(0.4, tmp / "mnt", ("docs", "man", "locales"), savings, tuple(f"/etc/{n}" for n in range(300)))
    return [
        mount,
        UnmountResult(seconds=0.5, image=Path("rootfs.ext4"), fsck_clean=False, fsck_report=("x",) * 5000),
        StagingResult(1.0, "nexlab/debian:bookworm", "sha256:" + "4" * 64, tmp, 7887, 130 << 20, ("l",) * 500),
        NormalizeResult(0.2, 1700000000, tuple(f"/var/log/{n}" for n in range(400)), ("/etc/hostname",), 3, 7887, 7887),
        TimesResult(0.3, 7887, True, 12),
        SizeResult(0.6, 208 << 20, 9952, 130 << 20, 7887, 32 << 20, 32 << 20 | 1 << 19),
        ResizeResult(1.2, tmp / "rootfs.ext4", 150 << 20, 200 << 20, 140 << 20, 60 << 20, None, tmp / "m.json"),
        SlimImageResult(2.0, tmp / "a.ext4", tmp / "b.ext4", 150 << 20, "6" * 64, slimmed),
        CompressResult(20.7, tmp / "rootfs.ext4.gz", "gzip", 200 << 20, 53 << 20, "7" * 64, "8" * 64),
        CacheResult(0.1, "9" * 64, True, 140 << 20),
        AgentResult(0.08, 21 << 20, True),
        ManyResult((*jobs, JobResult("broken", "local", tmp / "x.ext4", 0.4, None, "no base image here " * 20)), 12.5),
    ]


def _check(value: object) -> str:
    text = repr(value)
    assert "\n" not in text, text
    assert len(text) <= REPR_LIMIT, f"{type(value).__name__}: {len(text)} characters: {text[:300]}"
    assert text.startswith(f"<{type(value).__name__} ") and text.endswith(">"), text
    return text


def test_every_value_of_every_result_has_a_short_repr(results: Results, tmp_path: Path) -> None:
    seen: dict[int, Any] = {}
    for value in [*results.named().values(), *_other_steps(tmp_path)]:
        _walk(value, seen)
    checked = {type(v) for v in seen.values() if isinstance(v, Summarized)}
    for value in seen.values():
        if isinstance(value, Summarized):
            _check(value)
    # Every result type is among them, and every dataclass reachable from a result is summarized.
    _all_modules()
    assert _subclasses(Displayable) - checked == {StepResult}  # the base of the steps, never returned
    plain = {type(v).__name__ for v in seen.values() if dataclasses.is_dataclass(v) and not isinstance(v, Summarized)}
    assert plain == set(), f"dataclasses reachable from a result without a summary: {plain}"


def test_every_summarized_class_says_something_of_its_own() -> None:
    _all_modules()
    for cls in _subclasses(Summarized):
        if cls in (Displayable, StepResult):
            continue
        assert "summary" in vars(cls), f"{cls.__qualname__} has no summary() of its own"
        # A dataclass would have written its field-by-field repr over ours.
        assert cls.__repr__ is Summarized.__repr__, cls.__qualname__


@pytest.mark.parametrize("name", ["audit", "diff", "repro", "boot-ok", "boot-failed", "build", "populate"])
def test_repr_is_a_summary_and_str_the_text_report(results: Results, name: str) -> None:
    value = results.named()[name]
    text = _check(value)
    assert str(value) != text and len(str(value).splitlines()) > 3  # the text report, many lines


def test_repr_names_the_facts(results: Results) -> None:
    audit = results.audit
    assert repr(audit).startswith(f"<Audit b.ext4: {len(audit.files)} files, ")
    assert f"{len(audit.findings)} findings (worst critical)" in repr(audit)
    assert "302 added" in repr(results.diff)
    assert "same content, different bytes" in repr(results.same)
    assert repr(results.boot_ok) == "<BootResult a.ext4 (tcg): agent started in 9.8 s>"
    assert "FAILED: kernel panic" in repr(results.boot_failed)
    assert "sha256 5555555555555555…" in repr(results.build)


def test_a_long_summary_is_cut_with_an_ellipsis() -> None:
    from nexlab.audit.findings import Finding, Severity

    finding = Finding(Severity.LOW, "setuid", "x" * 1000, "fix", tuple(f"/usr/bin/f{n}" for n in range(3000)))
    text = _check(finding)
    assert text.startswith("<Finding low setuid (3000 paths): xxx") and text.endswith("…>")
