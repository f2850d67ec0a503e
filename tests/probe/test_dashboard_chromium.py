"""The dashboard in real headless Chromium, driven by Playwright.

A Starlette app with the dashboard routes and a stub ``/api/summary`` runs on uvicorn on
127.0.0.1 (a free port, a background thread). Playwright drives Debian's Chromium
(``executable_path``; ``playwright install`` is never needed), so the test watches what
``--dump-dom`` cannot: console messages, uncaught exceptions, log entries such as a 404 icon,
failed requests and every request the page makes.

Skipped only when ``/usr/bin/chromium`` is missing and ``CHATCONTRACT_REQUIRE_CHROMIUM`` is unset;
CI sets it, so CI never skips silently. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page as PlaywrightPage
from probe_helpers import make_run
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatcontract.contract import load_preset
from chatcontract.probe import ProbeStore, create_probe_app
from chatcontract.probe.dashboard import dashboard_routes
from chatcontract.probe.summary import summary_target

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_VARIABLE = "CHATCONTRACT_REQUIRE_CHROMIUM"
TIMEOUT_S = 30.0
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # container /dev/shm is often 64 MB: Chromium crashes in it
]

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


# --- a Playwright page that records what the browser reports --------------------------------------


@dataclass
class Page:
    """One tab: console messages, uncaught exceptions, failed loads and every request recorded."""

    tab: PlaywrightPage
    origin: str
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tab.on("console", self._on_console)
        self.tab.on("pageerror", lambda error: self.console.append(f"exception: {error}"))
        self.tab.on(
            "requestfailed",
            lambda request: self.console.append(
                f"request failed: {request.url} ({request.failure})"
            ),
        )
        self.tab.on("request", lambda request: self.requests.append(request.url))

    def _on_console(self, message: ConsoleMessage) -> None:
        # Chromium's log entries (a 404 icon, a failed fetch) arrive here as console errors too.
        if message.type in {"error", "warning", "assert"}:
            self.console.append(f"console.{message.type}: {message.text} {message.location}")

    def evaluate(self, expression: str) -> Any:
        return self.tab.evaluate(expression)

    def open(self, path: str) -> None:
        """Navigate and wait (bounded) for the load event: the new document is in place."""
        self.tab.goto(self.origin + path, wait_until="load")

    def wait_for(self, expression: str, what: str) -> Any:
        """Poll ``expression`` until truthy, bounded. (Not ``wait_for_function``: its in-page
        polling evaluates a string, which the page's CSP, rightly, refuses.)"""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            with contextlib.suppress(PlaywrightError):  # not evaluable yet: poll again
                value = self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {TIMEOUT_S} s waiting for {what}; {self.problems()}")
            time.sleep(0.05)

    def settle(self) -> None:
        """Let pending loads (the icon, late requests) land so their log entries are seen."""
        self.evaluate("new Promise((done) => setTimeout(done, 300))")

    def problems(self) -> list[str]:
        """Uncaught exceptions, console errors/warnings, log entries and failed requests."""
        return list(self.console)

    def requested_urls(self) -> list[str]:
        return list(self.requests)

    def screenshot(self, path: Path) -> Path:
        self.tab.screenshot(path=path, full_page=True, type="png")
        return path


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's headless Chromium driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{REQUIRE_VARIABLE} is set but {CHROMIUM} is missing: apt-get install chromium"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            timeout=TIMEOUT_S * 1000,
        )
        try:
            yield browser
        finally:
            browser.close()


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
def browser() -> Iterator[Browser]:
    with chromium() as connection:
        yield connection


@pytest.fixture
def page(browser: Browser, origin: str, stub: Stub) -> Iterator[Page]:
    """A fresh context and tab, with console, errors and network recorded; the stub reset."""
    stub.summary, stub.status, stub.hits = full_summary(), 200, 0
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, is_mobile=False)
    context.set_default_timeout(TIMEOUT_S * 1000)
    try:
        yield Page(tab=context.new_page(), origin=origin)
    finally:
        context.close()


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
    timeoutSub: text('[data-tile="client_timeout"] .sub'),
    latencyHint: text("#h-latency + .hint"),
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
    # Rates of calls, latency of successful probes: the page says which.
    assert seen["timeoutSub"].startswith("Calls (retries and fallback calls included)")
    assert "failed or timed out is not in these figures" in " ".join(seen["latencyHint"].split())
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


def test_probe_success_tile_counts_probes_by_their_verdict(
    browser: Browser, tmp_path: Path
) -> None:
    """The real probe app over a store where every probe failed on the primary route.

    Each probe failed, was retried, failed again and the fallback route answered: the tile
    shows 0 % of 8 probes over the window it names, not the share of calls that answered.
    """
    now = datetime(2026, 3, 2, 12, 30, tzinfo=UTC).timestamp()
    contract = load_preset("cometapi")
    runs = []
    for index in range(8):
        execution, at = f"e{index}", now - 3000 + index * 60
        failed = {"ok": False, "kind": "http", "category": "server", "execution_id": execution}
        runs += [
            make_run(at, **failed),
            make_run(at + 1, attempt=2, **failed),
            make_run(at + 2, route="smaller-model", attempt=3, execution_id=execution),
        ]
    with ProbeStore.open(tmp_path / "probe.db") as store:
        store.record_runs(runs)
        app = create_probe_app(
            store=store,
            registry=CollectorRegistry(),
            clock=lambda: now,
            contract=contract,
            target=summary_target(contract.endpoint.base_url, simulated=True, model=contract.model),
        )
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_S * 1000)
        try:
            with serve(app) as origin:
                page = Page(tab=context.new_page(), origin=origin)
                page.open("/")
                page.wait_for(READY, "the first render")
                figure, sub, classes = page.evaluate(
                    "(() => { const t = document.querySelector('[data-tile=\"success\"]');"
                    " return [t.querySelector('.figure').textContent,"
                    " t.querySelector('.sub').textContent, t.className]; })()"
                )
                problems = page.problems()
        finally:
            context.close()
    assert figure == "0%"
    assert sub == "0 ok · 8 failed of 8 probes, last 24 h"
    assert "status-act" in classes.split()
    assert problems == []
