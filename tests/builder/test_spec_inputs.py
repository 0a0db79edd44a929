"""Build inputs are declared once, on ``BuildSpec``: the CLI options and the panel's inputs come from there."""

from __future__ import annotations

import argparse
import dataclasses

from nexlab.builder.spec import BuildSpec, inputs
from nexlab.cli.main import parser


def _subparser(name: str) -> argparse.ArgumentParser:
    top = parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def test_every_field_is_declared() -> None:
    declared = [name for name, _ in inputs()]
    assert declared == [f.name for f in dataclasses.fields(BuildSpec)]
    flags = [given.flag for _, given in inputs()]
    assert len(set(flags)) == len(flags)


def test_build_and_repro_options_are_the_fields() -> None:
    for command in ("build", "repro"):
        actions = {a.dest: a for a in _subparser(command)._actions}
        for name, given in inputs():
            action = actions[name]
            assert action.option_strings == [given.flag]
            assert action.help == given.help
            assert action.required == (name == "agent")


def test_parsed_options_give_the_spec() -> None:
    args = _subparser("build").parse_args(
        ["--agent", "a", "--image", "x/y:z", "--size", "64MiB", "--init", "openrc", "--source-date-epoch", "5"]
    )
    spec = BuildSpec.from_values({**vars(args)})
    assert spec == BuildSpec.of("a", "x/y:z", size="64MiB", init="openrc", source_date_epoch=5)
    defaults = BuildSpec.from_values(vars(_subparser("build").parse_args(["--agent", "a"])))
    assert defaults == BuildSpec.of("a", size=str(BuildSpec.of("a").size))


def test_the_panel_shows_the_declared_inputs() -> None:
    from nexlab.ui.builder import BuilderPanel

    with BuilderPanel(agent="/some/agent", size="64MiB", network="bridge") as panel:
        shown = [name for name, given in inputs() if given.widget != "none"]
        assert list(panel.inputs) == shown
        for name, given in inputs():
            if name in panel.inputs:
                assert panel.inputs[name].description == given.label
        panel.inputs["script"].value = ""
        assert panel.spec() == BuildSpec.of("/some/agent", "nexlab/debian:bookworm", size="64MiB", network="bridge")
