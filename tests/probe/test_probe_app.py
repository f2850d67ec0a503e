"""The probe app: /metrics, /healthz, /api/summary and / (in process, then on a real socket)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from collections.abc import AsyncIterator, Callable

import httpx2
import pytest
from probe_helpers import PRESET_KEY, FakeClock, make_run, target_for
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from chatcontract.contract import Contract, load_preset
from chatcontract.probe import (
    SUMMARY_KEYS,
    AppServer,
    ProbeMetrics,
    Prober,
    ProberOptions,
    ProbeStore,
    create_probe_app,
)
from chatcontract.probe.summary import summary_target
from chatcontract.simulator import SimulatorServer

pytestmark = pytest.mark.anyio

CONTRACT = dataclasses.replace(load_preset("cometapi"), reviewed_on=dt.date(2026, 1, 1))
AppFactory = Callable[..., Starlette]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def app(store: ProbeStore, registry: CollectorRegistry, clock: FakeClock) -> Starlette:
    return create_probe_app(store=store, registry=registry, clock=clock, contract=CONTRACT)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://probe") as client:
        yield client


async def test_healthz_says_ok(client: httpx2.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_healthz_is_503_when_the_store_is_unusable(
    client: httpx2.AsyncClient, store: ProbeStore
) -> None:
    store.close()
    response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert (await client.get("/api/summary")).status_code == 503


async def test_metrics_expose_the_probe_series(
    client: httpx2.AsyncClient, registry: CollectorRegistry
) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'probe_paused{provider="cometapi",reason="daily_cost_cap"} 0.0' in text
    assert 'llm_contract_drift_total{kind="new_field",provider="cometapi"} 0.0' in text
    assert "# TYPE llm_contract_review_due_timestamp_seconds gauge" in text
    for family in (
        "probe_success",
        "probe_last_success_timestamp_seconds",
        "llm_validation_last_verdict",
        "llm_validation_last_timestamp_seconds",
    ):
        assert f"# TYPE {family} gauge" in text
    due = dt.datetime(2026, 4, 1, tzinfo=dt.UTC).timestamp()  # reviewed 2026-01-01 + 90 days
    assert (
        registry.get_sample_value(
            "llm_contract_review_due_timestamp_seconds", {"provider": "cometapi"}
        )
        == due
    )


async def test_metrics_follow_the_prober(
    simulator: SimulatorServer, store: ProbeStore, clock: FakeClock
) -> None:
    registry = CollectorRegistry()
    target = target_for(simulator)
    metrics = ProbeMetrics(registry, contract=target.contract)
    prober = Prober(
        target=target,
        store=store,
        metrics=metrics,
        clock=clock,
        options=ProberOptions(kinds=("non_streaming",), large_every=0, last_validate_path=None),
    )
    try:
        prober.run_cycle()
    finally:
        prober.close()
    app = create_probe_app(
        store=store,
        registry=registry,
        clock=clock,
        contract=target.contract,
        metrics=metrics,
        target=summary_target(target.base_url, simulated=True, model=target.model),
    )
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://probe"
    ) as client:
        text = (await client.get("/metrics")).text
        summary = (await client.get("/api/summary")).json()
    assert 'probe_success{probe="non_streaming",provider="cometapi"} 1.0' in text
    last = registry.get_sample_value(
        "probe_last_success_timestamp_seconds", {"probe": "non_streaming", "provider": "cometapi"}
    )
    assert last == clock.now
    if metrics.has_call_metrics:  # the telemetry layer's llm_* families, when installed
        assert "llm_request" in text
    assert summary["totals"]["success"] == 1


async def test_summary_has_the_documented_structure(client: httpx2.AsyncClient) -> None:
    response = await client.get("/api/summary")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert tuple(data) == SUMMARY_KEYS[""]
    assert tuple(data["rates"]) == SUMMARY_KEYS["rates"]
    assert data["window_hours"] == 24
    assert data["target"] == {
        "base_url": CONTRACT.endpoint.base_url,
        "simulated": False,
        "model": CONTRACT.model,
    }


async def test_summary_window_comes_from_the_query(
    client: httpx2.AsyncClient, store: ProbeStore, clock: FakeClock
) -> None:
    store.record_run(make_run(clock.now - 5 * 3600, target=PRESET_KEY))
    assert (await client.get("/api/summary?hours=2")).json()["totals"]["probes"] == 0
    data = (await client.get("/api/summary?hours=6")).json()
    assert (data["window_hours"], data["totals"]["probes"]) == (6, 1)


@pytest.mark.parametrize(
    "hours",
    ["0", "-3", "abc", "1.5", "100000"],
    ids=["zero", "negative", "text", "fraction", "too-many"],
)
async def test_summary_refuses_a_bad_window(client: httpx2.AsyncClient, hours: str) -> None:
    response = await client.get("/api/summary", params={"hours": hours})
    assert response.status_code == 400
    assert "hours" in response.json()["error"]


async def test_summary_says_paused_when_the_cap_is_reached(
    client: httpx2.AsyncClient, store: ProbeStore, clock: FakeClock
) -> None:
    store.record_run(make_run(clock.now - 10, cost_usd=1.0, target=PRESET_KEY))
    cost = (await client.get("/api/summary")).json()["cost"]
    assert cost == {"spent_today_usd": 1.0, "daily_cap_usd": 0.5, "paused": True}


async def test_the_page_is_the_dashboard(client: httpx2.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


async def test_without_the_dashboard_the_page_links_the_summary(
    store: ProbeStore, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.setitem(sys.modules, "chatcontract.probe.dashboard", None)
    app = create_probe_app(
        store=store, registry=CollectorRegistry(), clock=clock, contract=CONTRACT
    )
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://probe"
    ) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert 'href="api/summary"' in response.text


def test_two_apps_have_independent_registries(store: ProbeStore, clock: FakeClock) -> None:
    contracts: list[Contract] = [CONTRACT, CONTRACT]
    registries = [CollectorRegistry(), CollectorRegistry()]
    for contract, registry in zip(contracts, registries, strict=True):
        create_probe_app(store=store, registry=registry, clock=clock, contract=contract)
    assert (
        registries[0].get_sample_value(
            "probe_paused", {"reason": "daily_cost_cap", "provider": "cometapi"}
        )
        == 0.0
    )
    assert (
        registries[1].get_sample_value(
            "probe_paused", {"reason": "daily_cost_cap", "provider": "cometapi"}
        )
        == 0.0
    )


def test_the_app_serves_on_a_real_socket(app: Starlette) -> None:
    with AppServer(app, host="127.0.0.1", port=0) as server:
        assert server.port != 0
        with httpx2.Client(base_url=server.url, timeout=5.0) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert client.get("/api/summary").status_code == 200
    with pytest.raises(httpx2.ConnectError), httpx2.Client(timeout=2.0) as client:
        client.get(server.url + "/healthz")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("GET", "/api/nope", 404), ("POST", "/api/summary", 405)],
    ids=["unknown", "unknown-api", "post-summary"],
)
async def test_unknown_paths_and_methods_get_a_json_error(
    client: httpx2.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    if status == 404:
        assert path in error and "/api/summary" in error and "/metrics" in error
    else:
        allow = response.headers["allow"]
        assert "GET" in allow.split(", ") and f"POST is not allowed on {path}: use {allow}" == error
