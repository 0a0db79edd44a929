"""``BuildSpec``: the inputs of a build, in one frozen value.

What decides an image's content (agent, base image, scripts, size, network,
epoch) travels as one object through the mount build, the reproducible build
and ``repro``; where the image goes and how progress is shown do not belong here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from nexlab.builder.allocate import DEFAULT_SIZE
from nexlab.builder.populate import DEFAULT_IMAGE

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class BuildSpec:
    agent: Path
    image: str = DEFAULT_IMAGE
    script: Path | None = None
    service: Path | None = None
    size: int | str = DEFAULT_SIZE
    network: str = "none"
    #: For reproducible builds: the clock every time is clamped to (None: the base image's creation).
    source_date_epoch: int | None = None
    #: The base's init: ``auto`` (detected) or openrc, systemd, busybox, sysvinit.
    init: str = "auto"

    @classmethod
    def of(
        cls,
        agent: PathLike,
        image: str = DEFAULT_IMAGE,
        script: PathLike | None = None,
        service: PathLike | None = None,
        size: int | str = DEFAULT_SIZE,
        network: str = "none",
        source_date_epoch: int | None = None,
        init: str = "auto",
    ) -> BuildSpec:
        """A spec from the loose types users pass (``str`` paths, sizes as text)."""
        return cls(
            agent=Path(agent),
            image=image,
            script=Path(script) if script is not None else None,
            service=Path(service) if service is not None else None,
            size=size,
            network=network,
            source_date_epoch=source_date_epoch,
            init=init,
        )

    def absolute(self) -> BuildSpec:
        """The same spec with absolute paths, for builds that change the working directory."""
        return replace(
            self,
            agent=self.agent.resolve(),
            script=self.script.resolve() if self.script else None,
            service=self.service.resolve() if self.service else None,
        )

    def describe(self) -> dict[str, str]:
        """The inputs as text, for reports."""
        inputs = {"image": self.image, "agent": str(self.agent), "size": str(self.size), "network": self.network}
        if self.script:
            inputs["script"] = str(self.script)
        if self.service:
            inputs["service"] = str(self.service)
        if self.source_date_epoch is not None:
            inputs["source_date_epoch"] = str(self.source_date_epoch)
        if self.init != "auto":
            inputs["init"] = self.init
        return inputs
