"""``BuilderPanel``: the five build steps as buttons, one after the other, and one to run them all.

Each button runs one step of ``nexlab.builder`` with the panel's inputs and shows
the step's result below it. A button is enabled only when the step before it
succeeded; **Build** runs the five in order (stopping at the first that fails).
The bar and the live log sit right under the buttons, so a click shows something
moving where the user looks; allocate starts over: results and log are cleared.
Expected failures (``NexlabError``) are one red line in the panel, never a traceback.
The panel owns the ``Mount`` between the mount and unmount steps and releases it
when a step fails, when the panel is closed, and at the latest when the kernel exits.
"""

from __future__ import annotations

import html
import logging
import os
import re
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from nexlab import report
from nexlab.builder.allocate import allocate
from nexlab.builder.mkfs import mkfs
from nexlab.builder.mount import Mount, mount
from nexlab.builder.populate import populate, setup_inputs
from nexlab.builder.spec import BuildSpec, Input
from nexlab.builder.spec import default as spec_default
from nexlab.builder.spec import inputs as spec_inputs
from nexlab.builder.unmount import unmount
from nexlab.errors import NexlabError
from nexlab.ui.progress import WidgetProgress
from nexlab.ui.static import StaticFallback

log = logging.getLogger("nexlab.ui")

STEPS = ("allocate", "mkfs", "mount", "populate", "unmount")
_DESCRIPTIONS = {
    "allocate": "sparse file",
    "mkfs": "mkfs.ext4",
    "mount": "loop device",
    "populate": "container",
    "unmount": "umount + e2fsck -fn",
}
_MOUNT_INDEX = STEPS.index("mount")


def _release_quietly(held: Mount) -> None:
    # Runs from weakref.finalize, possibly at interpreter exit: never raise there.
    try:
        held.release()
    except Exception:
        log.warning("could not release %s", held, exc_info=True)


class BuilderPanel(StaticFallback, widgets.VBox):
    """Inputs, one button per step and a Build button, a progress bar, a live log and each
    step's result.

    ``panel.close()`` (or leaving ``with BuilderPanel(...) as panel:``) releases
    a mount the steps left open. Saved in a notebook, it reads as its last state.
    """

    def __init__(
        self,
        *,
        base: str = "nexlab/debian:bookworm",
        agent: str | os.PathLike[str] = "",
        script: str | os.PathLike[str] | None = None,
        size: str = "150MiB",
        output: str | os.PathLike[str] = "rootfs.ext4",
        network: str = "none",
        init: str = "auto",
        arch: str = "auto",
        overwrite: bool = False,
    ) -> None:
        text = {"style": {"description_width": "7em"}, "layout": {"width": "40em"}}
        given = {"base": base, "agent": agent, "script": script, "size": size, "network": network, "init": init}
        given["arch"] = arch
        #: One widget per BuildSpec input the panel shows (spec.py declares which, and how).
        self.inputs: dict[str, widgets.ValueWidget] = {}
        for name, declared in spec_inputs():
            if declared.widget != "none":
                self.inputs[name] = _input_widget(declared, given.get(name, spec_default(name)), text)
        self.output = widgets.Text(value=str(output), description="output", **text)
        self.overwrite = widgets.Checkbox(value=overwrite, description="replace an existing output", indent=False)

        self.progress = WidgetProgress()
        self.error = widgets.HTML(value="")
        self.buttons = {step: widgets.Button(description=step, layout={"width": "8em"}) for step in STEPS}
        self.build_button = widgets.Button(
            description="Build", button_style="primary", tooltip="run the five steps", layout={"width": "8em"}
        )
        self.build_button.on_click(lambda _button: self.build())
        self._running = False
        self.results = {step: widgets.HTML(value="") for step in STEPS}
        self.step_results: dict[str, Any] = {}
        #: How many steps, in order, have succeeded since the last allocate.
        self.completed = 0
        self.mount: Mount | None = None
        self._finalizer: weakref.finalize[..., Any] | None = None

        actions = self._actions()
        for step, button in self.buttons.items():
            button.on_click(self._handler(step, actions[step]))
        inputs = widgets.VBox([*self.inputs.values(), self.output, self.overwrite])
        buttons = widgets.HBox([*self.buttons.values(), self.build_button])
        results = widgets.VBox([self.results[step] for step in STEPS])
        super().__init__(
            [
                widgets.HTML("<b>nexlab: build a rootfs step by step</b>"),
                inputs,
                buttons,
                self.progress.widget,
                self.error,
                results,
            ]
        )
        self._refresh()

    # -- state ----------------------------------------------------------------
    def __getattr__(self, name: str) -> widgets.ValueWidget:
        # The inputs by field name (panel.base.value, panel.agent.value); the ext4 file is ``image_path``.
        inputs = self.__dict__.get("inputs", {})
        if name in inputs:
            return inputs[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def spec(self) -> BuildSpec:
        """The panel's inputs as a ``BuildSpec`` (an empty text is an optional input left out)."""
        values = {name: widget.value for name, widget in self.inputs.items()}
        optional = {name for name in values if spec_default(name) is None}
        return BuildSpec.from_values({n: None if n in optional and v == "" else v for n, v in values.items()})

    @property
    def image_path(self) -> Path:
        return Path(self.output.value).expanduser()

    @property
    def error_text(self) -> str:
        """The error line as plain text ("" when the last step succeeded)."""
        return html.unescape(_strip_tags(self.error.value))

    def enabled(self) -> dict[str, bool]:
        return {step: not button.disabled for step, button in self.buttons.items()}

    def _refresh(self) -> None:
        holding = self.mount is not None and self.mount.mounted
        for index, step in enumerate(STEPS):
            allowed = not self._running and (index == self.completed or (index == 0 and not holding))
            self.buttons[step].disabled = not allowed
            self.buttons[step].button_style = "success" if index < self.completed else ""
        self.build_button.disabled = self._running
        self.build_button.button_style = "success" if self.completed == len(STEPS) else "primary"

    def _handler(self, step: str, action: Callable[[], Any]) -> Callable[[widgets.Button], None]:
        def on_click(_button: widgets.Button) -> None:
            self.run_step(step, action)
            self.refresh_fallback()

        return on_click

    def build(self) -> bool:
        """Run the five steps in order, as clicking Build does; True when all succeeded."""
        actions = self._actions()
        self._running = True
        try:
            for step in STEPS:
                self.run_step(step, actions[step], in_build=True)
                if self.error.value:
                    break
        finally:
            self._running = False
            self._refresh()
            self.refresh_fallback()
        return self.completed == len(STEPS)

    def _actions(self) -> dict[str, Callable[[], Any]]:
        return {
            "allocate": self._allocate,
            "mkfs": self._mkfs,
            "mount": self._mount,
            "populate": self._populate,
            "unmount": self._unmount,
        }

    def run_step(self, step: str, action: Callable[[], Any], *, in_build: bool = False) -> None:
        index = STEPS.index(step)
        self.error.value = ""
        if index == 0:
            self.progress.clear()  # a new build: the old log would only mislead
        for later in STEPS[index:]:
            self.results[later].value = ""
        for button in [*self.buttons.values(), self.build_button]:
            button.disabled = True
        try:
            # The step is marked failed by the progress itself when the action raises.
            with self.progress.step(step, _DESCRIPTIONS[step]) as running:
                result = running.done(action())
        except (Exception, KeyboardInterrupt) as exc:
            # KeyboardInterrupt too: "interrupt the kernel" during populate must not leave the mount behind.
            # It is not re-raised: the handler runs inside the kernel's comm dispatch, where it would only be logged.
            self._release()
            if isinstance(exc, NexlabError):
                message = str(exc)
            elif isinstance(exc, KeyboardInterrupt):
                message = "interrupted"
            else:
                # A bug, not a user error: keep the traceback in the log, not in the panel.
                log.exception("%s failed", step)
                message = f"internal error ({type(exc).__name__}): {exc}"
            self.error.value = (
                f"<div style='color:#b00020;font-family:monospace'>✘ {html.escape(step)}: {html.escape(message)}</div>"
            )
            # Retry the step that failed; a step after mount needs the mount again.
            self.completed = _MOUNT_INDEX if index > _MOUNT_INDEX else index
        else:
            self.step_results[step] = result
            self.results[step].value = report.html(result, standalone=False)
            self.completed = index + 1
        finally:
            if not in_build:
                self._refresh()

    # -- display ----------------------------------------------------------------
    def fallback_text(self) -> str:
        done = ", ".join(STEPS[: self.completed]) or "none"
        failed = f"; {self.error_text}" if self.error_text else ""
        return f"BuilderPanel: {self.image_path} (steps done: {done}{failed})"

    # -- the steps ------------------------------------------------------------
    def _allocate(self) -> Any:
        # Check the inputs first, so a wrong agent path is reported before anything is created.
        spec = self.spec()
        setup_inputs(spec.agent, spec.script, spec.service)
        self._release()
        self.step_results.clear()
        return allocate(self.image_path, spec.size, overwrite=self.overwrite.value)

    def _mkfs(self) -> Any:
        return mkfs(self.image_path)

    def _mount(self) -> Any:
        self._release()
        held = mount(self.image_path)
        self.mount = held
        self._finalizer = weakref.finalize(self, _release_quietly, held)
        return held

    def _populate(self) -> Any:
        if self.mount is None:
            raise NexlabError("nothing is mounted", hint="press mount first")
        spec = self.spec()
        return populate(
            self.mount,
            agent=spec.agent,
            image=spec.base,
            script=spec.script,
            service=spec.service,
            network=spec.network,
            init=spec.init,
            arch=spec.arch,
            progress=self.progress,
        )

    def _unmount(self) -> Any:
        if self.mount is None:
            raise NexlabError("nothing is mounted", hint="press mount first")
        try:
            return unmount(self.mount)
        finally:
            self._forget_mount()

    # -- resources ------------------------------------------------------------
    def _forget_mount(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = None
        self.mount = None

    def _release(self) -> None:
        held = self.mount
        if held is None:
            return
        self._forget_mount()
        _release_quietly(held)

    def close(self) -> None:
        """Release a mount the steps left open, then close the widgets."""
        self._release()
        for child in self._descendants():
            child.close()
        super().close()

    def _descendants(self) -> list[widgets.Widget]:
        found: list[widgets.Widget] = []
        pending = list(self.children)
        while pending:
            widget = pending.pop()
            found.append(widget)
            pending.extend(getattr(widget, "children", ()))
        return found

    def __enter__(self) -> BuilderPanel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _input_widget(declared: Input, value: Any, text: dict[str, Any]) -> widgets.ValueWidget:
    if declared.widget == "choice":
        options = list(declared.options or declared.choices or ())
        return widgets.Dropdown(options=options, value=value, description=declared.label, style=text["style"])
    shown = "" if value is None else str(value)
    return widgets.Text(value=shown, description=declared.label, placeholder=declared.placeholder, **text)


def _strip_tags(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)
