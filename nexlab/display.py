"""How a result shows itself in a terminal and a notebook, without the model importing a presenter.

The models (Audit, Diff, ReproResult, BootResult, the build steps' results, a
Mount) inherit ``Displayable``; its methods import ``nexlab.report`` only when
called. That one lazy edge is the only way from the core packages to the
presenters: the models stay plain data, and ``nexlab.report`` imports them.

Every result, and every value a result holds (a budget, a finding, a package),
also inherits ``Summarized``: ``repr()`` is one short line, ``<Audit rootfs.ext4:
7887 files, 130.2 MiB, 0 high>``, built from the class's ``summary()``. A
dataclass's generated repr would print every field: an Audit's is megabytes
(every file record), and Jupyter saves it as the text/plain of every output.
"""

from __future__ import annotations

from typing import Any

#: Longest ``repr()`` a result gives (a summary is cut there, with an ellipsis).
REPR_LIMIT = 200


class Summarized:
    """``repr()`` is ``<ClassName summary>`` on one line, at most ``REPR_LIMIT`` characters."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ``@dataclass`` writes its own __repr__ unless the class body defines one; it runs after
        # the class exists, so putting ours in the class's own namespace here keeps every
        # dataclass subclass on the short form without each one saying ``repr=False``.
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = Summarized.__repr__  # type: ignore[method-assign]

    def summary(self) -> str:
        """The few facts that tell this value apart: a subclass says which."""
        return ""

    def __repr__(self) -> str:
        text = " ".join(self.summary().split())
        head = f"<{type(self).__name__}"
        line = f"{head} {text}>" if text else f"{head}>"
        if len(line) > REPR_LIMIT:
            line = line[: REPR_LIMIT - 2] + "…>"
        return line


class Displayable(Summarized):
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
