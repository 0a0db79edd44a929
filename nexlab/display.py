"""How a result shows itself in a terminal and a notebook, without the model importing a presenter.

The models (Audit, Diff, ReproResult, BootResult, the build steps' results, a
Mount) inherit ``Displayable``; its methods import ``nexlab.report`` only when
called. That one lazy edge is the only way from the core packages to the
presenters: the models stay plain data, and ``nexlab.report`` imports them.
"""

from __future__ import annotations

from typing import Any


class Displayable:
    __slots__ = ()

    def __str__(self) -> str:
        from nexlab import report

        return report.text(self)

    def _repr_html_(self) -> str:
        from nexlab import report

        return report.html(self, standalone=False)

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON contract (README.md, "JSON contracts"); a TypeError for a result without one."""
        from nexlab import report

        return report.json_dict(self)
