"""Headless Chromium driven over the DevTools protocol, on a pipe (no port, no websocket library).

``--remote-debugging-pipe`` makes Chromium read NUL-terminated JSON commands
from fd 3 and write replies and events to fd 4. That is all a test needs to
load a page the way a user would, see every console message, exception and
network request, query the DOM and take a screenshot. DNS is mapped to
nothing, so a page that tries to fetch from the network fails loudly here
instead of working by accident.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
#: Nothing resolves: a report that fetches anything shows it as a failed request.
NO_NETWORK = "--host-resolver-rules=MAP * ~NOTFOUND"
#: The same, but a server of the test on 127.0.0.1 (JupyterLab) is reached.
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageLoad:
    """What happened while a page loaded."""

    url: str
    console: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Everything a user would see as a problem in the DevTools console."""
        console = [f"console.{level}: {text}" for level, text in self.console if level in ("error", "assert")]
        return [*console, *self.exceptions, *self.log_errors, *self.failed]

    @property
    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "about:", "blob:"))]


class DevToolsError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page; use ``with chromium() as browser``."""

    def __init__(self, process: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self._process = process
        self._to = to_browser
        self._from = from_browser
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self.session = ""

    # -- the pipe -------------------------------------------------------------
    def _send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._from], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._from, 1 << 20)
            if not chunk:
                raise DevToolsError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True, timeout: float = 30
    ) -> Any:
        wanted = self._send(method, params, session=session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(max(deadline - time.monotonic(), 0))
            if message is None:
                raise DevToolsError(f"{method}: no answer in {timeout} s")
            if message.get("id") == wanted:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)
                self._leave(message)

    def _drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message = self._read(left)
            if message is None:
                return
            if "method" in message:
                self._events.append(message)
                self._leave(message)

    def _leave(self, event: dict[str, Any]) -> None:
        """A page asking "leave with unsaved changes?" (JupyterLab does) is left: the navigation
        that asked would otherwise wait for an answer no headless user gives."""
        if event["method"] == "Page.javascriptDialogOpening" and event["params"].get("type") == "beforeunload":
            self._send("Page.handleJavaScriptDialog", {"accept": True})

    # -- pages ----------------------------------------------------------------
    def open_page(self, width: int = 1280, height: int = 900) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        attached = self.call("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def load(self, path: Path, *, settle: float = 0.5, timeout: float = 30) -> PageLoad:
        """Navigate to ``path`` (a local file), wait for the load event, then for late messages."""
        return self.goto(path.resolve().as_uri(), settle=settle, timeout=timeout)

    def goto(self, url: str, *, settle: float = 0.5, timeout: float = 30) -> PageLoad:
        """Navigate to ``url`` (a page of a local server: use 127.0.0.1, no name resolves), wait for
        the load event, then for late messages."""
        self._events.clear()
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self._events):
            if time.monotonic() > deadline:
                raise DevToolsError(f"{url} did not finish loading in {timeout} s")
            self._drain(0.1)
        self._drain(settle)
        return self._page_load(url)

    def messages(self) -> PageLoad:
        """Everything that happened since the last navigation (events read so far, then pending ones)."""
        self._drain(0.05)
        return self._page_load("")

    def wait_for(self, expression: str, *, timeout: float = 60, every: float = 0.25) -> Any:
        """Evaluate ``expression`` until it is truthy; its value (a ``DevToolsError`` on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise DevToolsError(f"still false after {timeout} s: {expression}")
            self._drain(every)

    def click(self, selector: str, *, text: str | None = None) -> None:
        """Click the first element matching ``selector`` (whose text is ``text``, when given) with the
        mouse, as a user would: scrolled into view, pressed and released at its centre."""
        find = f"Array.from(document.querySelectorAll({json.dumps(selector)}))" + (
            f".filter(e => e.textContent.trim() === {json.dumps(text)})" if text is not None else ""
        )
        box = self.evaluate(
            f"(() => {{ const e = {find}[0]; if (!e) return null; e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        if box is None:
            raise DevToolsError(f"nothing to click: {selector} {text or ''}".strip())
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    def key(self, key: str, code: str, key_code: int, *, modifiers: int = 0) -> None:
        """Press and release one key (``modifiers``: 2 = Ctrl, 8 = Shift), as a user would."""
        for kind in ("keyDown", "keyUp"):
            self.call(
                "Input.dispatchKeyEvent",
                {"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code, "modifiers": modifiers},
            )

    def _page_load(self, url: str) -> PageLoad:
        load = PageLoad(url)
        for event in self._events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                load.console.append((params.get("type", ""), text))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                load.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                load.log_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
            elif method == "Network.requestWillBeSent":
                load.requests.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                load.failed.append(f"failed to load: {params.get('errorText')} ({params.get('requestId')})")
        return load

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self, destination: Path | None = None, *, full_page: bool = False, max_height: int = 4000) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            width, height = int(size["width"]), min(int(size["height"]), max_height)
            params.update(
                captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
            )
        data = base64.b64decode(self.call("Page.captureScreenshot", params)["data"])
        if destination is not None:
            destination.write_bytes(data)
        return data

    def close(self) -> None:
        try:
            self._send("Browser.close", session=False)
            self._process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()
        finally:
            for fd in (self._to, self._from):
                with suppress(OSError):
                    os.close(fd)


def _high_fds(pair: tuple[int, int]) -> tuple[int, int]:
    """The pipe's ends moved above 10, so the child's dup2 onto 3 and 4 cannot clobber them."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in pair)
    for fd in pair:
        os.close(fd)
    return moved[0], moved[1]


@contextmanager
def chromium(*, width: int = 1280, height: int = 900, loopback: bool = False) -> Iterator[Browser]:
    """A headless Chromium with one open page; killed and its profile removed on the way out.

    ``loopback``: pages may reach servers on 127.0.0.1 (and still nothing else)."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="nexlab-chromium-")
    # fd 3: commands to Chromium; fd 4: replies and events from it.
    to_read, to_write = _high_fds(os.pipe())
    from_read, from_write = _high_fds(os.pipe())
    process = None
    try:

        def child_fds() -> None:
            os.dup2(to_read, 3)
            os.dup2(from_write, 4)

        process = subprocess.Popen(
            [
                binary,
                *CHROMIUM_FLAGS,
                LOOPBACK_ONLY if loopback else NO_NETWORK,
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Kept open past the fd clean-up that follows preexec_fn.
            pass_fds=(3, 4),
            preexec_fn=child_fds,
            env={**os.environ, "LC_ALL": "C.UTF-8", "TZ": "UTC"},
        )
        os.close(to_read)
        os.close(from_write)
        browser = Browser(process, to_write, from_read)
        try:
            browser.open_page(width, height)
            yield browser
        finally:
            browser.close()
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced PNG, as Chromium writes them."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    offset, idat = 8, b""
    width = height = channels = 0
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or interlace or color not in (2, 6):
                raise ValueError(f"unsupported PNG (depth {depth}, colour type {color}, interlace {interlace})")
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def colour_stats(data: bytes) -> tuple[int, float]:
    """(distinct colours, share of pixels that are not white) of a PNG screenshot."""
    width, height, rows = png_pixels(data)
    channels = len(rows[0]) // width if rows else 3
    colours: set[bytes] = set()
    inked = 0
    for row in rows:
        for x in range(0, len(row), channels):
            pixel = row[x : x + 3]
            colours.add(pixel)
            if pixel != b"\xff\xff\xff":
                inked += 1
    return len(colours), inked / max(width * height, 1)
