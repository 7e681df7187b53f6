"""Test helper: headless Chromium driven over the DevTools protocol on a pipe (no extra package).

The tests use it to check that the report renders: every network request the page makes (data: and
file: loads included), console errors, the laid-out size and a full-page screenshot. Chromium's
command line cannot tell these (its --log-net-log records no file: loads and does record Chromium's
own background traffic), so this stays here; the PDF itself goes through Chromium's command line
(products.pdf), not through this client.

    from tests.products.devtools import render_page
    r = render_page("results/2025-01/report.html", screenshot="shot.png")
    r.failed_requests        # [] for a self-contained page

Chromium is started with `--remote-debugging-pipe`: commands go in on file descriptor 3 and
replies/events come out on descriptor 4, as JSON messages separated by NUL bytes.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from products.pdf import CHROMIUM_FLAGS, find_chromium

log = logging.getLogger(__name__)

LOCAL_SCHEMES = ("data:", "file:", "about:", "blob:", "chrome:", "devtools:")


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer."""


@dataclass
class RenderResult:
    """What the page did while loading."""

    url: str
    requests: list[str] = field(default_factory=list)          # every URL the page requested
    failed_requests: list[str] = field(default_factory=list)   # 'url: error' of failed loads
    external_requests: list[str] = field(default_factory=list)  # URLs not data:/file:/about:
    console_errors: list[str] = field(default_factory=list)
    content_size: tuple[float, float] = (0.0, 0.0)             # CSS px (width, height)
    screenshot: Path | None = None
    seconds: float = 0.0
    # CSS selector -> the fonts that drew the first matching node's text:
    # [{"familyName", "isCustomFont" (a web font of the page), "glyphCount"}, ...]
    fonts: dict[str, list[dict]] = field(default_factory=dict)


class _Pipe:
    """A DevTools session over Chromium's debugging pipe."""

    def __init__(self, exe: str, user_data_dir: str, timeout: float):
        self.timeout = timeout
        to_child_r, self._to_child_w = os.pipe()
        self._from_child_r, from_child_w = os.pipe()

        def child_fds():  # fds 3 and 4 of the child, inheritable (dup2 clears close-on-exec)
            a, b = os.dup(to_child_r), os.dup(from_child_w)  # both > 4 after the pipes
            os.dup2(a, 3)
            os.dup2(b, 4)

        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}",
               "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=child_fds, pass_fds=(3, 4))
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self.events: "queue.Queue[dict]" = queue.Queue()
        self._cond = threading.Condition()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self):
        for line in self.proc.stderr:
            if len(self._stderr) < 200:
                self._stderr.append(line)

    def _read(self):
        buf = b""
        with os.fdopen(self._from_child_r, "rb", buffering=0) as fh:
            while chunk := fh.read(1 << 16):
                buf += chunk
                *msgs, buf = buf.split(b"\0")
                for raw in msgs:
                    msg = json.loads(raw)
                    if "id" in msg:
                        with self._cond:
                            self._replies[msg["id"]] = msg
                            self._cond.notify_all()
                    else:
                        self.events.put(msg)
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or getattr(self, "_closed", False) or self.proc.poll() is not None:
                    raise BrowserError(f"Chromium did not answer {method} within {self.timeout:.0f}"
                                       f" s; stderr: {b''.join(self._stderr[-5:]).decode(errors='replace')}")
                self._cond.wait(min(left, 0.5))
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise BrowserError(f"Chromium {method} failed: {reply['error']}")
        return reply.get("result", {})

    def close(self):
        try:
            self.send("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            os.close(self._to_child_w)
        except OSError:
            pass


def _handle(ev: dict, res: RenderResult, pending: dict) -> None:
    m, p = ev.get("method"), ev.get("params", {})
    if m == "Network.requestWillBeSent":
        url = p["request"]["url"]
        pending[p["requestId"]] = url
        res.requests.append(url)
        if not url.startswith(LOCAL_SCHEMES):
            res.external_requests.append(url)
    elif m == "Network.loadingFailed":
        url = pending.get(p["requestId"], "?")
        res.failed_requests.append(f"{url[:120]}: {p.get('errorText', '')} "
                                   f"{p.get('blockedReason', '')}".strip())
    elif m == "Network.responseReceived":
        status = p["response"].get("status", 0)
        url = p["response"].get("url", "")
        if status >= 400:
            res.failed_requests.append(f"{url[:120]}: HTTP {status}")
    elif m == "Runtime.exceptionThrown":
        res.console_errors.append(str(p.get("exceptionDetails", {}).get("text", "exception")))
    elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
        res.console_errors.append(p["entry"].get("text", ""))


def render_page(html_path, *, screenshot=None, width: int = 1200,
                max_height: int = 16000, timeout: float = 60.0, settle: float = 0.5,
                chromium: str | None = None, fonts_for=()) -> RenderResult:
    """Open `html_path` in headless Chromium, record its requests, optionally save a full-page
    PNG screenshot and, for each CSS selector of `fonts_for`, the fonts that drew the text of its
    first node (CSS.getPlatformFontsForNode). Raises BrowserError when Chromium is missing or stuck."""
    exe = chromium or find_chromium()
    if not exe:
        raise BrowserError("no Chromium found; install it (Debian: apt-get install -y chromium) "
                           "or set GZ_CHROMIUM to its path.")
    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise BrowserError(f"{html_path}: file not found.")
    res = RenderResult(url=html_path.as_uri())
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gz-chromium-") as profile:
        b = _Pipe(exe, profile, timeout)
        try:
            target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            sid = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for dom in ("Network", "Page", "Runtime", "Log"):
                b.send(f"{dom}.enable", session=sid)
            b.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900,
                   "deviceScaleFactor": 1, "mobile": False}, session=sid)
            b.send("Page.navigate", {"url": res.url}, session=sid)
            pending: dict[str, str] = {}
            deadline = time.monotonic() + timeout
            loaded_at = None
            while True:
                now = time.monotonic()
                if loaded_at is not None and now - loaded_at >= settle:
                    break
                if now > deadline:
                    raise BrowserError(f"{html_path}: page did not finish loading in {timeout:.0f} s.")
                try:
                    ev = b.events.get(timeout=0.1)
                except queue.Empty:
                    continue
                if ev.get("sessionId") != sid:
                    continue
                if ev.get("method") == "Page.loadEventFired":
                    loaded_at = time.monotonic()
                _handle(ev, res, pending)
            while not b.events.empty():  # late events
                ev = b.events.get_nowait()
                if ev.get("sessionId") == sid:
                    _handle(ev, res, pending)
            if fonts_for:
                _fonts(b, sid, fonts_for, res)
            size = b.send("Page.getLayoutMetrics", session=sid)["cssContentSize"]
            res.content_size = (float(size["width"]), float(size["height"]))
            if screenshot is not None:
                h = min(res.content_size[1], max_height)
                shot = b.send("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": h, "scale": 1}}, session=sid)
                res.screenshot = _atomic_write(screenshot, base64.b64decode(shot["data"]))
        finally:
            b.close()
    res.seconds = time.monotonic() - t0
    log.info("rendered %s in %.1f s: %d requests, %d failed, %d external", html_path,
             res.seconds, len(res.requests), len(res.failed_requests), len(res.external_requests))
    return res


def _fonts(b: _Pipe, sid: str, selectors, res: RenderResult) -> None:
    b.send("DOM.enable", session=sid)
    b.send("CSS.enable", session=sid)
    root = b.send("DOM.getDocument", {"depth": -1}, session=sid)["root"]["nodeId"]
    for sel in selectors:
        node = b.send("DOM.querySelector", {"nodeId": root, "selector": sel}, session=sid)["nodeId"]
        res.fonts[sel] = (b.send("CSS.getPlatformFontsForNode", {"nodeId": node}, session=sid)["fonts"]
                          if node else [])


def _atomic_write(path, data: bytes) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.stem}.tmp{p.suffix}")
    tmp.write_bytes(data)
    os.replace(tmp, p)
    return p
