"""``BuildSpec``: the inputs of a build, in one frozen value, declared once.

What decides an image's content (agent, base image, scripts, size, network,
epoch) travels as one object through the mount build, the reproducible build
and ``repro``; where the image goes and how progress is shown do not belong here.

Each field carries its ``Input`` (field metadata): the command-line flag, its
help, how text is parsed and which widget the notebook panel shows. ``nexlab
build``/``nexlab repro`` make their options from it and ``BuilderPanel`` its
inputs, so a new input is added here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from nexlab.builder.allocate import DEFAULT_SIZE
from nexlab.builder.init import INIT_CHOICES
from nexlab.builder.inputs import DEFAULT_IMAGE
from nexlab.slim.categories import CATEGORIES as SLIM_CATEGORIES
from nexlab.slim.categories import DEFAULT as SLIM_DEFAULT
from nexlab.slim.categories import checked_names, parse_categories

PathLike = str | os.PathLike[str]
#: How the notebook panel shows an input: a text box, a drop-down, or not at all.
Widget = Literal["text", "choice", "none"]


@dataclass(frozen=True)
class Input:
    """How a ``BuildSpec`` field is given on the command line and in the panel."""

    flag: str
    help: str
    #: Text to value, for argparse's ``type=`` (a ValueError's message becomes the one-line error).
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    #: The values argparse accepts (None: any).
    choices: tuple[str, ...] | None = None
    widget: Widget = "text"
    #: The panel's label and, for a drop-down whose options are not ``choices``, its options.
    label: str = ""
    options: tuple[str, ...] = ()
    placeholder: str = ""
    #: The value of the flag given without one (argparse ``nargs="?"``); None: a value is required.
    const: Any = None


def epoch_seconds(text: str) -> int:
    """``--source-date-epoch``'s value: whole seconds since 1970 (ValueError says what is wrong)."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number of seconds") from None
    if value < 0:
        raise ValueError(f"{value} is before 1970")
    return value


def _input(**kwargs: Any) -> dict[str, Input]:
    return {"input": Input(**kwargs)}


@dataclass(frozen=True)
class BuildSpec:
    # Fields are in the order `nexlab build --help` lists them.
    agent: Path = field(
        metadata={
            "input": Input(
                "--agent",
                "the agent binary (installed as /usr/local/bin/agent)",
                parse=Path,
                label="agent",
                placeholder="path to the agent",
            )
        }
    )
    #: The base image: a Docker reference (``nexlab/debian:bookworm``). In nexlab's code an
    #: ``image`` is always the ext4 file; the flag stays ``--image``, as nex rootfs spells it.
    base: str = field(
        default=DEFAULT_IMAGE,
        metadata=_input(flag="--image", help=f"base image (default: {DEFAULT_IMAGE})", label="base image"),
    )
    script: Path | None = field(
        default=None,
        metadata=_input(
            flag="--script",
            help="extra setup script run in the container before the copy",
            parse=Path,
            label="script",
            placeholder="optional setup script",
        ),
    )
    service: Path | None = field(
        default=None,
        metadata=_input(
            flag="--service",
            help="the agent's service for the base's init: an OpenRC script, a systemd unit or an inittab "
            "wrapper (default: nexlab's, supervised, as nex)",
            parse=Path,
            widget="none",
        ),
    )
    #: The base's init: ``auto`` (detected) or openrc, systemd, busybox, sysvinit.
    init: str = field(
        default="auto",
        metadata=_input(
            flag="--init",
            help="the base's init (default: auto, detected from the base image)",
            choices=INIT_CHOICES,
            widget="choice",
            label="init",
        ),
    )
    size: int | str = field(
        default=DEFAULT_SIZE,
        metadata=_input(
            flag="--size",
            help=f"filesystem size in bytes or with a unit, e.g. 200MiB (default: {DEFAULT_SIZE}), or auto: "
            "the smallest image that holds the content and --free/--workload",
            label="size",
        ),
    )
    #: With ``size="auto"``: bytes nex can still write (default 32 MiB; on top of ``workload``'s room).
    free: int | str | None = field(
        default=None,
        metadata=_input(
            flag="--free",
            help="with --size auto: free space nex can still write, e.g. 64MiB (default: 32MiB, "
            "room for nex's ~20 MB workload and what it writes)",
            label="free",
            placeholder="with size auto",
        ),
    )
    #: With ``size="auto"``: a workload binary of this size must fit (the audit's --workload says so).
    workload: int | str | None = field(
        default=None,
        metadata=_input(
            flag="--workload",
            help="with --size auto: the size of the workload binary nex will write; the image leaves "
            "room for it and its margin (plus --free when given)",
            label="workload",
            placeholder="with size auto",
        ),
    )
    network: str = field(
        default="none",
        metadata=_input(
            flag="--network",
            help="Docker network of the setup container: none (default) or bridge when --script downloads",
            widget="choice",
            label="network",
            options=("none", "bridge"),
        ),
    )
    #: For reproducible builds: the clock every time is clamped to (None: the base image's creation).
    source_date_epoch: int | None = field(
        default=None,
        metadata=_input(
            flag="--source-date-epoch",
            help="for reproducible builds (build --reproducible, and repro's default runs): clamp every time "
            "to N seconds since 1970 (default: $SOURCE_DATE_EPOCH, else the base image's creation time)",
            parse=epoch_seconds,
            metavar="N",
            widget="none",
        ),
    )
    #: The Docker engine that runs the setup container: a docker context's name or a URL
    #: (``tcp://``, ``ssh://``, ``unix://``); None is ``DOCKER_HOST``'s, else the local one.
    #: It does not shape the image: a reproducible build gives the same bytes on every engine.
    engine: str | None = field(
        default=None,
        metadata=_input(
            flag="--engine",
            help="Docker engine for the setup container: a docker context name or a URL (tcp://HOST:PORT, "
            "ssh://USER@HOST, unix:///PATH; TLS from DOCKER_TLS_VERIFY/DOCKER_CERT_PATH or the context) "
            "(default: DOCKER_HOST, else the local engine)",
            metavar="NAME|URL",
            label="engine",
            placeholder="default: the local engine",
        ),
    )

    #: The CPU the image is for: "amd64", "arm64"; None: the agent's ELF machine, else the host's.
    #: A foreign one runs the setup container under qemu-user-static (binfmt_misc).
    arch: str | None = field(
        default=None,
        metadata=_input(
            flag="--arch",
            help="the image's CPU: amd64 or arm64 (default: the agent's ELF machine, else the host's); "
            "arm64 on an amd64 host runs the setup under qemu-user-static",
            choices=("amd64", "arm64"),
            widget="choice",
            label="arch",
            options=("auto", "amd64", "arm64"),
        ),
    )

    #: Slimming categories removed before the image is made (``nexlab.slim``); empty: none.
    slim: tuple[str, ...] = field(
        default=(),
        metadata=_input(
            flag="--slim",
            help=f"remove what the audit calls reclaimable: comma-separated categories of "
            f"{', '.join(SLIM_CATEGORIES)} (or all); without a value {','.join(SLIM_DEFAULT)}. docs keeps the "
            "copyright files, locales keeps C.UTF-8; dpkg is told to leave them out of later installs",
            parse=parse_categories,
            metavar="CATEGORIES",
            widget="none",
            const=SLIM_DEFAULT,
        ),
    )

    @classmethod
    def of(
        cls,
        agent: PathLike,
        base: str = DEFAULT_IMAGE,
        script: PathLike | None = None,
        service: PathLike | None = None,
        size: int | str = DEFAULT_SIZE,
        network: str = "none",
        source_date_epoch: int | None = None,
        init: str = "auto",
        free: int | str | None = None,
        workload: int | str | None = None,
        slim: str | Iterable[str] | None = (),
        engine: str | None = None,
        arch: str | None = None,
    ) -> BuildSpec:
        """A spec from the loose types users pass (``str`` paths, sizes as text)."""
        return cls(
            agent=Path(agent),
            base=base,
            script=Path(script) if script is not None else None,
            service=Path(service) if service is not None else None,
            size=size,
            network=network,
            source_date_epoch=source_date_epoch,
            init=init,
            free=free,
            workload=workload,
            slim=checked_names(slim) if slim else (),
            engine=engine or None,
            arch=None if arch in (None, "", "auto") else arch,
        )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> BuildSpec:
        """A spec from one value per field name (an argparse namespace's ``vars``, the panel's inputs)."""
        return cls.of(**{name: values[name] for name, _ in inputs() if name in values})

    def target_arch(self) -> str:
        """``arch``, else the agent's ELF machine, else the host's (an unsupported ELF is refused)."""
        from nexlab.builder.inputs import target_arch

        return target_arch(self.agent, self.arch)

    def absolute(self) -> BuildSpec:
        """The same spec with absolute paths, for builds that change the working directory."""
        return replace(
            self,
            agent=self.agent.resolve(),
            script=self.script.resolve() if self.script else None,
            service=self.service.resolve() if self.service else None,
        )

    def describe(self) -> dict[str, str]:
        """The inputs as text, for reports (the base is ``image`` there, as on the command line)."""
        inputs = {"image": self.base, "agent": str(self.agent), "size": str(self.size), "network": self.network}
        if self.script:
            inputs["script"] = str(self.script)
        if self.service:
            inputs["service"] = str(self.service)
        if self.source_date_epoch is not None:
            inputs["source_date_epoch"] = str(self.source_date_epoch)
        if self.arch is not None:
            inputs["arch"] = self.arch
        if self.init != "auto":
            inputs["init"] = self.init
        if self.free is not None:
            inputs["free"] = str(self.free)
        if self.workload is not None:
            inputs["workload"] = str(self.workload)
        if self.slim:
            inputs["slim"] = ",".join(self.slim)
        if self.engine:
            inputs["engine"] = self.engine
        return inputs


def inputs() -> Iterator[tuple[str, Input]]:
    """(field name, how it is given) for every input of a build, in declaration order."""
    for spec_field in dataclasses.fields(BuildSpec):
        yield spec_field.name, spec_field.metadata["input"]


def default(name: str) -> Any:
    """A field's default (``dataclasses.MISSING`` for the required agent)."""
    return {f.name: f.default for f in dataclasses.fields(BuildSpec)}[name]
