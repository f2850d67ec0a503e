"""The dashboard in real headless Chromium, driven over the DevTools protocol.

A Starlette app with the dashboard routes and a stub ``/api/summary`` runs on uvicorn on
127.0.0.1 (a free port, a background thread). Chromium starts headless with a fresh profile and
``--remote-debugging-port=0``; it writes the port it chose to ``DevToolsActivePort`` in the
profile. The test talks CDP over a WebSocket through a small stdlib client (RFC 6455 framing is
a few lines; no dependency), so it can watch what ``--dump-dom`` cannot: console messages,
uncaught exceptions, log entries such as a 404 favicon, and every network request the page makes.

Skipped only when ``/usr/bin/chromium`` is missing and ``CHATCONTRACT_REQUIRE_CHROMIUM`` is unset;
CI sets it, so CI never skips silently. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatcontract.probe.dashboard import dashboard_routes

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_VARIABLE = "CHATCONTRACT_REQUIRE_CHROMIUM"
TIMEOUT_S = 30.0
VIEWPORT = {"width": 1280, "height": 900}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get(REQUIRE_VARIABLE),
    reason=f"{CHROMIUM} is not installed (set {REQUIRE_VARIABLE}=1 to make this a failure)",
)

KINDS = ("transport", "http", "api_error", "parser", "semantic", "budget")


# --- the stub summary ----------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def full_summary() -> dict[str, Any]:
    """A day of hourly buckets touching every field: failures of every kind, gaps, drift."""
    now = datetime(2025, 6, 10, 14, 5, tzinfo=UTC)
    start = now.replace(minute=0) - timedelta(hours=23)
    timeline: list[dict[str, Any]] = []
    for hour in range(24):
        if hour in (6, 7):  # the probe process was down: the summary lists no bucket
            continue
        by_kind = {kind: int((hour + 3 * index) % 6 == 0) for index, kind in enumerate(KINDS)}
        if hour in (18, 19):  # an incident: the gateway answers with error envelopes
            by_kind["api_error"] += 4
            by_kind["transport"] += 2
        failure = sum(by_kind.values())
        timeline.append(
            {
                "t": _iso(start + timedelta(hours=hour)),
                "success": 60 - failure,
                "failure": failure,
                "by_kind": by_kind,
                "p50_ms": 380.0 + 15 * (hour % 6),
                "p95_ms": 1450.0 + 90 * (hour % 5),
                "schema_valid_rate": round(1 - by_kind["parser"] / 60, 4),
            }
        )
    failures_by_kind = {kind: sum(row["by_kind"][kind] for row in timeline) for kind in KINDS}
    failure = sum(failures_by_kind.values())
    success = sum(row["success"] for row in timeline)
    return {
        "generated_at": _iso(now),
        "window_hours": 24,
        "contract": {
            "name": "support-bot → cometapi",
            "provider": "cometapi",
            "owner": "platform-team",
            "reviewed_on": "2025-03-01",
            "review_due_on": "2025-06-01",
            "days_until_review": -9,
        },
        "target": {
            "base_url": "https://api.cometapi.com/v1",
            "simulated": False,
            "model": "gpt-4o-mini",
        },
        "totals": {"probes": success + failure, "success": success, "failure": failure},
        "failures_by_kind": failures_by_kind,
        "rates": {
            "schema_valid": 0.9731,
            "client_timeout": 0.0068,
            "fallback_activation": 0.021,
            "retry_success": 0.83,
            "usage_available": None,
        },
        "counts": {
            "missing_required_paths": 3,
            "parse_failures": 5,
            "auth_failures": 0,
            "rate_limited": 7,
            "quota": 1,
        },
        "response_models": {
            "gpt-4o-mini-2024-07-18": 1190,
            "gpt-4o-mini": 60,
            "gpt-3.5-turbo-0125": 35,
        },
        "latency_by_prompt_size": {
            "short": {"p50_ms": 412.0, "p95_ms": 1630.5, "samples": 1100},
            "large": {"p50_ms": 2210.0, "p95_ms": 5875.0, "samples": 185},
        },
        "timeline": timeline,
        "probes": {
            "non_streaming": {
                "last_run_at": _iso(now - timedelta(minutes=1)),
                "last_success_at": _iso(now - timedelta(minutes=1)),
                "last_ok": True,
            },
            "streaming": {
                "last_run_at": _iso(now - timedelta(minutes=2)),
                "last_success_at": _iso(now - timedelta(hours=3)),
                "last_ok": False,
            },
            "usage_capture": {
                "last_run_at": _iso(now - timedelta(minutes=1)),
                "last_success_at": None,
                "last_ok": False,
            },
        },
        "last_validation": {
            "at": _iso(now - timedelta(hours=5)),
            "verdict": "fail",
            "passed": 17,
            "failed": 2,
            "warned": 1,
            "skipped": 3,
        },
        "drift_events": [
            {
                "at": _iso(now - timedelta(hours=2)),
                "kind": "new_field",
                "detail": "response: +choices[].message.reasoning_content",
            },
            {
                "at": _iso(now - timedelta(hours=9)),
                "kind": "new_finish_reason",
                "detail": "finish_reason: content_filter",
            },
        ],
        "cost": {"spent_today_usd": 0.5012, "daily_cap_usd": 0.5, "paused": True},
    }


def empty_summary() -> dict[str, Any]:
    """What a probe that has just started reports: nothing measured yet."""
    return {
        "generated_at": "2025-06-10T14:05:00Z",
        "window_hours": 24,
        "contract": {
            "name": "support-bot",
            "provider": "cometapi",
            "owner": "platform-team",
            "reviewed_on": None,
            "review_due_on": None,
            "days_until_review": None,
        },
        "target": {"base_url": "http://127.0.0.1:9/v1", "simulated": True, "model": "gpt-4o-mini"},
        "totals": {"probes": 0, "success": 0, "failure": 0},
        "failures_by_kind": dict.fromkeys(KINDS, 0),
        "rates": dict.fromkeys(
            (
                "schema_valid",
                "client_timeout",
                "fallback_activation",
                "retry_success",
                "usage_available",
            )
        ),
        "counts": dict.fromkeys(
            ("missing_required_paths", "parse_failures", "auth_failures", "rate_limited", "quota"),
            0,
        ),
        "response_models": {},
        "latency_by_prompt_size": {
            "short": {"p50_ms": None, "p95_ms": None, "samples": 0},
            "large": {"p50_ms": None, "p95_ms": None, "samples": 0},
        },
        "timeline": [],
        "probes": {},
        "last_validation": None,
        "drift_events": [],
        "cost": {"spent_today_usd": 0.0, "daily_cap_usd": 1.0, "paused": False},
    }


@dataclass
class Stub:
    """What the stub ``/api/summary`` answers, and how often it was asked."""

    summary: dict[str, Any] = field(default_factory=full_summary)
    status: int = 200
    hits: int = 0

    async def endpoint(self, request: Request) -> Response:
        self.hits += 1
        if self.status != 200:
            return Response("upstream store unavailable", status_code=self.status)
        return JSONResponse(self.summary)


# --- uvicorn on a background thread --------------------------------------------------------------


@contextlib.contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 and a free port; yield its origin. Bounded start and stop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name="dashboard-stub", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped during start-up"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(2)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop within 12 s"


# --- a minimal WebSocket client and CDP session ----------------------------------------------------


class WebSocket:
    """Just enough RFC 6455 for CDP: text frames out (masked), text frames in, pings answered."""

    _GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        self._sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT_S)
        key = base64.b64encode(os.urandom(16))
        self._sock.sendall(
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._recv()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head.decode(errors="replace")
        accept = base64.b64encode(
            hashlib.sha1(key + self._GUID).digest()
        )  # RFC 6455 mandates SHA-1 here
        assert b"sec-websocket-accept: " + accept.lower() in head.lower(), "bad handshake"

    def _recv(self) -> bytes:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("DevTools closed the WebSocket")
        return chunk

    def _read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._buffer += self._recv()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytearray([0x80 | opcode])
        size = len(payload)
        if size < 126:
            header.append(0x80 | size)
        elif size < 1 << 16:
            header += bytes([0x80 | 126]) + size.to_bytes(2, "big")
        else:
            header += bytes([0x80 | 127]) + size.to_bytes(8, "big")
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self._sock.sendall(bytes(header) + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def receive(self, timeout: float) -> str:
        self._sock.settimeout(max(timeout, 0.01))
        message = b""
        while True:
            first, second = self._read(2)
            size = second & 0x7F
            if size == 126:
                size = int.from_bytes(self._read(2), "big")
            elif size == 127:
                size = int.from_bytes(self._read(8), "big")
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(size)
            if mask:
                payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode in (0x0, 0x1):
                message += payload
                if first & 0x80:
                    return message.decode()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send_frame(0x8, b"")
        self._sock.close()


class CDPError(Exception):
    """A DevTools command was refused (e.g. evaluating while a navigation swaps the document)."""


class Browser:
    """A CDP connection to the browser; pages are flat sessions on it."""

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = json.loads(self._ws.receive(deadline - time.monotonic()))
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, *, session: str, after: int) -> None:
        """Wait (bounded) for ``method`` on ``session`` among events from index ``after`` on."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            if any(
                event["method"] == method and event.get("sessionId") == session
                for event in self.events[after:]
            ):
                return
            reply = json.loads(self._ws.receive(deadline - time.monotonic()))
            if "method" in reply:
                self.events.append(reply)


@dataclass
class Page:
    """One tab: navigate, evaluate, screenshot, and what it logged."""

    browser: Browser
    session: str
    origin: str

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def open(self, path: str) -> None:
        """Navigate and wait (bounded) for the load event: the new document is in place."""
        seen = len(self.browser.events)
        self.call("Page.navigate", {"url": self.origin + path})
        self.browser.wait_event("Page.loadEventFired", session=self.session, after=seen)

    def wait_for(self, expression: str, what: str) -> Any:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            with contextlib.suppress(CDPError, AssertionError):  # not evaluable yet: poll again
                value = self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {TIMEOUT_S} s waiting for {what}; {self.problems()}")
            time.sleep(0.05)

    def settle(self) -> None:
        """Let pending loads (the icon, late requests) land so their log entries are seen."""
        self.evaluate("new Promise((done) => setTimeout(done, 300))")

    def _events(self, method: str) -> list[dict[str, Any]]:
        return [
            event["params"]
            for event in self.browser.events
            if event.get("sessionId") == self.session and event["method"] == method
        ]

    def problems(self) -> list[str]:
        """Uncaught exceptions, console errors/warnings, and error/warning log entries."""
        found = [
            f"exception: {params['exceptionDetails'].get('exception', {}).get('description')}"
            f" / {params['exceptionDetails'].get('text')}"
            for params in self._events("Runtime.exceptionThrown")
        ]
        found += [
            f"console.{params['type']}: {[arg.get('value') for arg in params['args']]}"
            for params in self._events("Runtime.consoleAPICalled")
            if params["type"] in {"error", "warning", "assert"}
        ]
        found += [
            f"log {params['entry']['level']} ({params['entry']['source']}): "
            f"{params['entry']['text']} {params['entry'].get('url', '')}"
            for params in self._events("Log.entryAdded")
            if params["entry"]["level"] in {"error", "warning"}
        ]
        return found

    def requested_urls(self) -> list[str]:
        return [params["request"]["url"] for params in self._events("Network.requestWillBeSent")]

    def screenshot(self, path: Path) -> Path:
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.call(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@contextlib.contextmanager
def chromium(profile: Path, log: Path) -> Iterator[Browser]:
    """Headless Chromium with a fresh profile; yields a CDP connection. Bounded start and stop."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{REQUIRE_VARIABLE} is set but {CHROMIUM} is missing: apt-get install chromium"
        )
    args = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-dev-shm-usage",  # container /dev/shm is often 64 MB: Chromium crashes in it
        "--mute-audio",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,  # its zygote and renderers share our child's process group
        )
    ws: WebSocket | None = None
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT_S
        while not (active.exists() and len(active.read_text().splitlines()) >= 2):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"Chromium did not open DevTools within {TIMEOUT_S} s:\n{tail}")
            time.sleep(0.05)
        port, browser_path = active.read_text().splitlines()[:2]
        ws = WebSocket(f"ws://127.0.0.1:{port}{browser_path}")
        yield Browser(ws)
    finally:
        if ws is not None:
            ws.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stub() -> Stub:
    return Stub()


@pytest.fixture(scope="module")
def origin(stub: Stub) -> Iterator[str]:
    app = Starlette(routes=[*dashboard_routes(), Route("/api/summary", stub.endpoint)])
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    home = tmp_path_factory.mktemp("chromium")
    with chromium(home / "profile", home / "chromium.log") as connection:
        yield connection


@pytest.fixture
def page(browser: Browser, origin: str, stub: Stub) -> Iterator[Page]:
    """A fresh tab, with console, log and network events recorded; the stub reset."""
    stub.summary, stub.status, stub.hits = full_summary(), 200, 0
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})
    tab = Page(browser=browser, session=session["sessionId"], origin=origin)
    for domain in ("Runtime", "Log", "Network", "Page"):
        tab.call(f"{domain}.enable")
    tab.call(
        "Emulation.setDeviceMetricsOverride",
        {**VIEWPORT, "deviceScaleFactor": 1, "mobile": False},
    )
    yield tab
    browser.call("Target.closeTarget", {"targetId": target})


READY = "document.documentElement?.dataset.state === 'ready'"

MEASURE = """(() => {
  const all = (selector) => [...document.querySelectorAll(selector)];
  const text = (selector) => document.querySelector(selector)?.textContent.trim() ?? null;
  return {
    failureBars: all("#chart-failures svg rect.bar").length,
    failureKinds: [...new Set(all("#chart-failures rect.bar").map((r) => r.dataset.kind))].sort(),
    failureTitle: text("#chart-failures svg > title"),
    schemaSegments: all("#chart-schema svg path.line")
      .map((path) => path.getAttribute("d").split("M").length - 1),
    schemaDots: all("#chart-schema svg circle.dot").length,
    latencyBars: all("#chart-latency-size svg rect.bar").length,
    latencySegments: all("#chart-latency-time svg path.line")
      .map((path) => path.getAttribute("d").split("M").length - 1),
    modelBars: all("#chart-models svg rect.bar").length,
    unlabelledCharts: all("svg.chart-svg").filter((svg) => !svg.querySelector("title")).length,
    schemaTile: text('[data-tile="schema_valid"] .figure'),
    validation: text('[data-tile="last_validation"] .figure'),
    validationStatus: document.querySelector('[data-tile="last_validation"]').className,
    review: text('[data-tile="review"] .figure'),
    reviewStatus: document.querySelector('[data-tile="review"]').className,
    usage: text('[data-tile="usage_available"] .figure'),
    quotaStatus: document.querySelector('[data-tile="quota"]').className,
    paused: text('[data-banner="paused"]'),
    probes: all("#probe-table tbody tr").map((row) => row.dataset.probe),
    drift: all("#drift-list li .detail").map((node) => node.textContent),
  };
})()"""


# --- tests ---------------------------------------------------------------------------------------


def test_page_loads_with_no_console_error_and_nothing_outside_the_origin(page: Page) -> None:
    page.open("/")
    page.wait_for(READY, "the first render")
    page.settle()

    assert page.problems() == []
    urls = page.requested_urls()
    assert f"{page.origin}/api/summary" in urls
    outside = [url for url in urls if not url.startswith(page.origin + "/")]
    assert outside == []


def test_charts_and_tiles_render_the_summary(page: Page) -> None:
    page.open("/")
    page.wait_for(READY, "the first render")

    seen = page.evaluate(MEASURE)

    assert seen["failureBars"] > 20
    assert seen["failureKinds"] == sorted(KINDS)
    assert seen["failureTitle"] == "Failures per hour by kind, last 24 h"
    assert seen["schemaSegments"] == [2]  # the two unprobed hours split the line
    assert seen["schemaDots"] == 22
    assert seen["latencyBars"] == 4
    assert seen["latencySegments"] == [2, 2]  # p50 and p95, each split by the gap
    assert seen["modelBars"] == 3
    assert seen["unlabelledCharts"] == 0
    assert seen["schemaTile"] == "97.3%"
    assert seen["validation"] == "FAIL"
    assert "status-act" in seen["validationStatus"]
    assert seen["review"] == "overdue 9 days"
    assert "status-act" in seen["reviewStatus"]
    assert seen["usage"] == "—"
    assert "status-act" in seen["quotaStatus"]
    assert seen["paused"].startswith("Probing paused.")
    assert seen["probes"] == ["non_streaming", "streaming", "usage_capture"]
    assert seen["drift"] == [
        "response: +choices[].message.reasoning_content",
        "finish_reason: content_filter",
    ]


@pytest.mark.parametrize(
    ("days", "text", "status"),
    [
        (-9, "overdue 9 days", "status-act"),
        (0, "due today", "status-watch"),
        (13, "in 13 days", "status-watch"),
        (14, "in 14 days", "status-ok"),
        (None, "no date", "status-none"),
    ],
    ids=["overdue", "today", "under-14-days", "14-days", "no-review-date"],
)
def test_review_due_tile_turns_amber_then_red(
    page: Page, stub: Stub, days: int | None, text: str, status: str
) -> None:
    stub.summary["contract"]["days_until_review"] = days

    page.open("/")
    page.wait_for(READY, "the first render")

    tile = page.evaluate(
        "(() => { const t = document.querySelector('[data-tile=\"review\"]');"
        " return [t.querySelector('.figure').textContent, t.className]; })()"
    )
    assert tile[0] == text
    assert status in tile[1].split()


@pytest.mark.parametrize(
    ("rate", "text"),
    [(0.99996, "99.99%"), (0.9731, "97.3%"), (1.0, "100%"), (0.0, "0%"), (None, "—")],
    ids=["never-rounded-up-to-100", "one-decimal", "all", "none", "no-data"],
)
def test_schema_valid_tile_shows_the_percentage(
    page: Page, stub: Stub, rate: float | None, text: str
) -> None:
    stub.summary["rates"]["schema_valid"] = rate

    page.open("/")
    page.wait_for(READY, "the first render")

    assert (
        page.evaluate("document.querySelector('[data-tile=\"schema_valid\"] .figure').textContent")
        == text
    )


@pytest.mark.parametrize(
    ("query", "fetched"),
    [
        ("", "/api/summary"),
        ("?hours=168", "/api/summary?hours=168"),
        ("?hours=1;drop", "/api/summary"),
        ("?hours=99999", "/api/summary"),
    ],
    ids=["default-day", "a-week", "not-a-number", "beyond-a-year"],
)
def test_page_passes_a_valid_window_to_the_summary(page: Page, query: str, fetched: str) -> None:
    page.open("/" + query)
    page.wait_for(READY, "the first render")

    summary_requests = [url for url in page.requested_urls() if "/api/" in url]
    assert summary_requests == [page.origin + fetched]


def test_screenshot_is_produced(page: Page, tmp_path: Path) -> None:
    page.open("/")
    page.wait_for(READY, "the first render")
    page.settle()

    shot = page.screenshot(tmp_path / "dashboard.png")

    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 50_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == VIEWPORT["width"]
    assert height > VIEWPORT["height"]  # the whole page, not just the first screen


def test_fresh_probe_shows_no_data_yet_without_errors(page: Page, stub: Stub) -> None:
    stub.summary = empty_summary()

    page.open("/")
    page.wait_for(READY, "the first render")
    page.settle()

    empties = page.evaluate("document.querySelectorAll('svg.chart-empty').length")
    assert empties == 5
    assert page.evaluate("document.querySelector('#chart-failures').textContent").endswith(
        "No data yet"
    )
    assert page.evaluate(
        "document.querySelector('[data-tile=\"schema_valid\"] .badge').textContent"
    )
    assert page.problems() == []


def test_text_from_the_summary_is_never_markup(page: Page, stub: Stub) -> None:
    hostile = '<img src="/x" onerror="window.pwned = 1">'
    stub.summary["contract"]["name"] = hostile
    stub.summary["drift_events"][0]["detail"] = "<script>window.pwned = 2</script>"
    stub.summary["response_models"] = {"<b>bold</b>": 3}

    page.open("/")
    page.wait_for(READY, "the first render")
    page.settle()

    assert page.evaluate("document.querySelector('#contract-name').textContent") == hostile
    assert page.evaluate("document.querySelectorAll('img, b, main script').length") == 0
    assert page.evaluate("window.pwned === undefined")
    assert page.problems() == []


def test_page_refreshes_itself(page: Page, stub: Stub) -> None:
    page.open("/?refresh=1")
    page.wait_for(READY, "the first render")
    stub.summary["rates"]["schema_valid"] = 0.5

    page.wait_for(
        "document.querySelector('[data-tile=\"schema_valid\"] .figure').textContent === '50.0%'",
        "the refreshed schema-valid rate",
    )

    assert stub.hits >= 2
    assert page.problems() == []


def test_unavailable_summary_shows_a_banner_not_an_exception(page: Page, stub: Stub) -> None:
    stub.status = 503

    page.open("/")
    page.wait_for("document.documentElement?.dataset.state === 'error'", "the error render")
    page.settle()

    banner = page.evaluate("document.querySelector('#banners').textContent")
    assert "Could not refresh the summary (HTTP 503)" in banner
    # The browser itself logs the failed fetch; nothing else may be reported.
    problems = [p for p in page.problems() if "status of 503" not in p]
    assert problems == []
