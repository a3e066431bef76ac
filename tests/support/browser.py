"""Headless Chromium driven over the Chrome DevTools Protocol, for the dashboard's browser
test: a small CDP client on aiohttp's websockets (no Playwright, no Selenium, nothing
downloaded). The browser is Debian's ``chromium`` package: ``.ci/run`` installs it; on a
dev machine ``sudo apt-get install chromium`` (or point ``HEDGEBOT_CHROMIUM`` at any
Chrome or Chromium binary).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "chromium not found: install Debian's package (`sudo apt-get install -y chromium`; "
    ".ci/run does) or set HEDGEBOT_CHROMIUM to a Chrome or Chromium binary"
)


def find_chromium() -> str | None:
    """The browser binary: $HEDGEBOT_CHROMIUM, else the first of BINARIES on PATH."""
    configured = os.environ.get("HEDGEBOT_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else shutil.which(configured)
    return next((found for name in BINARIES if (found := shutil.which(name))), None)


class JavaScriptError(AssertionError):
    """The page threw, or ``evaluate`` was given an expression that throws."""


class Page:
    """One browser tab: navigate, evaluate JavaScript, wait for a condition, screenshot."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.errors: list[str] = []  # uncaught exceptions and console errors of the page
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            waiting = self._waiting.pop(data.get("id", -1), None)
            if waiting is not None and not waiting.done():
                waiting.set_result(data)
            elif data.get("method") == "Runtime.exceptionThrown":
                details = data["params"]["exceptionDetails"]
                self.errors.append(str(details.get("exception", {}).get("description", details)))
            elif data.get("method") == "Runtime.consoleAPICalled":
                if data["params"].get("type") == "error":
                    args = data["params"].get("args", [])
                    self.errors.append(" ".join(str(a.get("value", a)) for a in args))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One CDP command; its result, or AssertionError with the protocol's error."""
        message_id = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = answer
        command = {"id": message_id, "method": method, "params": params}
        await self._socket.send_str(json.dumps(command))
        data = await asyncio.wait_for(answer, timeout=30)
        if "error" in data:
            raise AssertionError(f"{method}: {data['error']}")
        result: dict[str, Any] = data.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise JavaScriptError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def navigate(self, url: str) -> None:
        """Open ``url`` and wait until the document has loaded."""
        await self.send("Page.navigate", url=url)
        await self.wait_for(
            f"location.href === {json.dumps(url)} && document.readyState === 'complete'",
            what=f"{url} loaded",
        )

    async def wait_for(self, expression: str, within: float = 30, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy (an exception counts as not yet: the
        page may still be loading); its value. AssertionError after ``within`` seconds."""
        deadline = asyncio.get_running_loop().time() + within
        value: Any = None
        while asyncio.get_running_loop().time() < deadline:
            try:
                value = await self.evaluate(expression)
            except JavaScriptError as exc:
                value = str(exc)[-300:]
            else:
                if value:
                    return value
            await asyncio.sleep(0.2)
        raise AssertionError(f"{what or expression}: not true within {within:g} s (last {value!r})")

    async def screenshot(self, width: int = 1280) -> bytes:
        """A PNG of the whole page, ``width`` CSS pixels wide."""
        height = int(await self.evaluate("document.documentElement.scrollHeight"))
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])

    async def close(self) -> None:
        self._reader.cancel()
        with suppress(asyncio.CancelledError):
            await self._reader


async def _devtools_port(profile: Path, process: subprocess.Popen[bytes], log: Path) -> int:
    """The port Chromium chose (``--remote-debugging-port=0`` writes it to the profile)."""
    for _ in range(300):
        port = _written_port(profile / "DevToolsActivePort")
        if port is not None:
            return port
        if process.poll() is not None:
            raise AssertionError(f"chromium exited with {process.returncode}: {_tail(log)}")
        await asyncio.sleep(0.1)
    raise AssertionError("chromium did not open its DevTools port within 30 s")


def _written_port(marker: Path) -> int | None:
    text = marker.read_text() if marker.exists() else ""
    return int(text.splitlines()[0]) if text.strip() else None


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


@asynccontextmanager
async def headless_chromium(binary: str, profile: Path) -> AsyncIterator[Page]:
    """A headless Chromium on a fresh profile, and its first tab with Page and Runtime on;
    the browser's own messages go to ``chromium.log`` beside the profile."""
    log = profile.parent / "chromium.log"
    with log.open("wb") as output:
        process = _start(binary, profile, output)
    try:
        port = await _devtools_port(profile, process, log)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                targets = await answer.json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with http.ws_connect(url, max_msg_size=0) as socket:
                page = Page(socket)
                try:
                    await page.send("Page.enable")
                    await page.send("Runtime.enable")
                    yield page
                finally:
                    await page.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _start(binary: str, profile: Path, output: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            binary,
            "--headless=new",
            "--no-sandbox",  # CI runs as root in a container
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,1400",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=output,
    )
