"""Drive headless Chromium (Debian's `chromium`) over the DevTools protocol through
`--remote-debugging-pipe` (JSON messages ending in NUL on fds 3 and 4): no websocket library,
no browser-automation framework. Enough for the page tests: open a tab, navigate and wait for
the load event, evaluate JavaScript, read cookies, take a full-page screenshot."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, width: int = 1280, height: int = 900) -> None:
        assert CHROMIUM, "chromium is not installed"
        self.profile = tempfile.mkdtemp(prefix="astrobio-chromium-")
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # high copies first, so the child's dup2 onto 3 and 4 cannot clobber one another
        r_hi, w_hi = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 20) for fd in (to_chrome_r, from_chrome_w))

        def child_fds() -> None:
            os.dup2(r_hi, 3)
            os.dup2(w_hi, 4)

        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}", "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=child_fds, close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for fd in (to_chrome_r, from_chrome_w, r_hi, w_hi):
            os.close(fd)
        self._w, self._r = to_chrome_w, from_chrome_r
        self._buf = b""
        self._id = 0
        self._events: list[dict[str, Any]] = []
        self.width, self.height = width, height

    # --- protocol ---------------------------------------------------------------------------

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no message from chromium")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None, timeout: float = 60) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_event(self, name: str, session: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self._events):
                if e.get("method") == name and e.get("sessionId") == session:
                    return self._events.pop(i)
            self._events.append(self._read(deadline))

    # --- a tab ------------------------------------------------------------------------------

    def tab(self) -> str:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        return session

    def goto(self, session: str, url: str, headers: dict[str, str] | None = None) -> int:
        """Navigate and wait for the load event; returns the document's HTTP status."""
        self.call("Network.setExtraHTTPHeaders", {"headers": headers or {}}, session=session)
        self._events = [e for e in self._events if e.get("sessionId") != session]
        self.call("Page.navigate", {"url": url}, session=session)
        return self.wait_loaded(session)

    def wait_loaded(self, session: str) -> int:
        status = 0
        deadline = time.monotonic() + 60
        while True:
            e = self.wait_event_any(session, ("Network.responseReceived", "Page.loadEventFired"), deadline)
            if e["method"] == "Network.responseReceived" and e["params"].get("type") == "Document":
                status = e["params"]["response"]["status"]
            if e["method"] == "Page.loadEventFired":
                return status

    def wait_event_any(self, session: str, names: tuple[str, ...], deadline: float) -> dict[str, Any]:
        while True:
            for i, e in enumerate(self._events):
                if e.get("method") in names and e.get("sessionId") == session:
                    return self._events.pop(i)
            self._events.append(self._read(deadline))

    def eval(self, session: str, expression: str) -> Any:
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        return res.get("result", {}).get("value")

    def screenshot(self, session: str, path: Path) -> Path:
        h = int(self.eval(session, "Math.ceil(document.documentElement.scrollHeight)") or self.height)
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": min(h, 6000), "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        path.write_bytes(base64.b64decode(data))
        return path

    def cookies(self, session: str, url: str) -> list[dict[str, Any]]:
        return self.call("Network.getCookies", {"urls": [url]}, session=session)["cookies"]

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)
