"""The daemon on a full disk, drift from ``probe --once`` reaching it, and simulated rows kept out."""

from __future__ import annotations

import dataclasses
import logging
import random
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from probe_helpers import (
    SIMULATED_KEY,
    FakeClock,
    ProberFactory,
    contract_for,
    make_run,
    sample_value,
    target_for,
    write_real_contract,
)
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from test_store_targets import fill_the_disk, free_the_disk, write_until_full

from chatcontract.cli import main, probe_cmd
from chatcontract.contract import Prices, load_preset
from chatcontract.probe import (
    DriftEvent,
    Prober,
    ProbeStore,
    Scheduler,
    create_probe_app,
    run_loop,
)
from chatcontract.probe.summary import summary_target
from chatcontract.simulator import SimulatorServer

pytestmark = pytest.mark.anyio

PRESET = load_preset("cometapi")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor, disk: FullDisk) -> None:
        self._cursor = cursor
        self._disk = disk

    def execute(self, sql: str, params: Any = ()) -> Any:
        if self._disk.full and sql.lstrip().split(None, 1)[0].upper() in _WRITES:
            raise sqlite3.OperationalError("database or disk is full")
        return self._cursor.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


_WRITES = {"INSERT", "UPDATE", "DELETE"}


class FullDisk:
    """The store's connection, answering every write with SQLITE_FULL's error while ``full``."""

    def __init__(self, store: ProbeStore) -> None:
        self._conn = store._connection()
        self.full = False
        store._conn = self  # type: ignore[assignment]  # the injection point

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor(), self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _app(store: ProbeStore, prober: Prober, registry: CollectorRegistry, clock: FakeClock) -> Any:
    target = prober.target
    return create_probe_app(
        store=store,
        registry=registry,
        clock=clock,
        contract=target.contract,
        metrics=prober.metrics,
        target=summary_target(target.base_url, simulated=target.simulated, model=target.model),
        unrecorded_spend=prober.unrecorded_spend,  # as `chatcontract probe` wires them
    )


@pytest.fixture
async def daemon(
    simulator: SimulatorServer, store: ProbeStore, clock: FakeClock, make_prober: ProberFactory
) -> AsyncIterator[tuple[Prober, httpx2.AsyncClient, CollectorRegistry]]:
    registry = CollectorRegistry()
    prober = make_prober(
        target_for(simulator), registry=registry, kinds=("non_streaming",), large_every=0
    )
    app: Starlette = _app(store, prober, registry, clock)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://probe") as client:
        yield prober, client, registry


async def test_a_full_disk_degrades_healthz_and_the_metric_then_recovers(
    daemon: tuple[Prober, httpx2.AsyncClient, CollectorRegistry], store: ProbeStore
) -> None:
    prober, client, registry = daemon
    prober.run_cycle()
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    disk = FullDisk(store)
    disk.full = True

    result = prober.run_cycle()  # does not raise: the probe ran, its row was not stored
    assert [outcome.ok for outcome in result.outcomes] == [True]
    health = await client.get("/healthz")
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "degraded"
    assert body["storage"]["error"] == "database or disk is full"
    assert body["storage"]["reason"] == "disk_full"
    assert body["storage"]["failed_writes"] >= 1
    assert body["storage"]["since"].endswith("Z")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert sample_value(registry, "probe_store_writable") == 0.0
    assert sample_value(registry, "probe_store_write_errors_total", reason="disk_full") >= 1
    assert (await client.get("/api/summary")).status_code == 200
    assert (await client.get("/")).status_code == 200
    assert (await client.get("/livez")).status_code == 200
    assert sample_value(registry, "probe_success", probe="non_streaming") == 1.0

    disk.full = False
    prober.run_cycle()
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    await client.get("/metrics")
    assert sample_value(registry, "probe_store_writable") == 1.0
    assert store.count_runs() == 2  # the first and the third cycles


async def test_a_real_sqlite_full_degrades_healthz_too(
    daemon: tuple[Prober, httpx2.AsyncClient, CollectorRegistry], store: ProbeStore
) -> None:
    _prober, client, registry = daemon
    fill_the_disk(store)
    write_until_full(store)
    response = await client.get("/healthz")
    assert (response.status_code, response.json()["status"]) == (503, "degraded")
    await client.get("/metrics")
    assert sample_value(registry, "probe_store_writable") == 0.0
    free_the_disk(store)
    store.record_run(make_run(0.0))
    assert (await client.get("/healthz")).status_code == 200


async def test_the_page_of_a_real_target_ignores_simulated_rows(
    store: ProbeStore, clock: FakeClock
) -> None:
    store.record_run(make_run(clock.now - 60, target=SIMULATED_KEY, cost_usd=3.0))
    registry = CollectorRegistry()
    app = create_probe_app(
        store=store,
        registry=registry,
        clock=clock,
        contract=PRESET,
        target=summary_target("https://user:pw@api.example.com/v1?x=1", simulated=False, model="m"),
    )
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://probe") as client:
        summary = (await client.get("/api/summary")).json()
    assert summary["target"]["base_url"] == "https://api.example.com/v1"
    assert summary["totals"]["probes"] == 0
    assert summary["cost"]["spent_today_usd"] == 0.0
    assert summary["probes"] == {}


async def test_drift_found_by_probe_once_reaches_a_running_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "probe.db"
    # The accepted baseline: what the plain simulator sends.
    assert main(["probe", "--once", "--db", str(db), "--probe", "non_streaming"]) == 0
    assert main(["baseline", "accept", "--from", "probe", "--db", str(db), "--force"]) == 0

    with ProbeStore.open(db) as store:
        registry = CollectorRegistry()
        app = create_probe_app(
            store=store,
            registry=registry,
            clock=clock,
            contract=PRESET,
            target=summary_target("http://127.0.0.1:1/v1", simulated=True, model="gpt-4.1-nano"),
        )
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://probe") as client:
            await client.get("/metrics")
            assert sample_value(registry, "llm_contract_drift_total", kind="new_field") == 0.0

            # cron: another process probes once, finds drift, stores it.
            code = main(
                [
                    "probe",
                    "--once",
                    "--db",
                    str(db),
                    "--simulate",
                    "--scenario",
                    "drift_extra_field",
                    "--probe",
                    "non_streaming",
                    "--baseline",
                    "chatcontract.baseline.json",
                ]
            )
            assert code == 0
            await client.get("/metrics")
            assert sample_value(registry, "llm_contract_drift_total", kind="new_field") == 1.0
            await client.get("/metrics")  # counted once, not on every scrape
            assert sample_value(registry, "llm_contract_drift_total", kind="new_field") == 1.0
            summary = (await client.get("/api/summary")).json()
            assert any("x_chatcontract_drift" in item["detail"] for item in summary["drift_events"])


async def test_a_restarted_daemon_does_not_count_stored_drift_again(
    store: ProbeStore, clock: FakeClock
) -> None:
    store.record_drift(
        DriftEvent(at=clock.now, kind="new_model", detail="m", key="k", target=SIMULATED_KEY)
    )
    registry = CollectorRegistry()
    create_probe_app(
        store=store,
        registry=registry,
        clock=clock,
        contract=PRESET,
        target=summary_target("http://127.0.0.1:1/v1", simulated=True, model="gpt-4.1-nano"),
    )
    assert sample_value(registry, "llm_contract_drift_total", kind="new_model") == 0.0


def test_probe_once_while_paused_by_the_cost_cap_says_paused_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "probe.db"
    with ProbeStore.open(db) as store:
        # The preset's cap is spent today on the simulated target (what --once probes here).
        store.record_run(make_run(time.time(), target=SIMULATED_KEY, cost_usd=1000.0))
    code = main(["probe", "--once", "--db", str(db)])
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.startswith("paused: the daily cost cap is reached")
    assert "no probe sent" in out
    with ProbeStore.open(db) as store:
        assert store.count_runs() == 1  # nothing was probed


def test_simulated_spend_does_not_pause_a_real_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, simulator: SimulatorServer
) -> None:
    monkeypatch.chdir(tmp_path)
    write_real_contract(tmp_path / "chatcontract.yaml", simulator)
    monkeypatch.setenv("COMETAPI_KEY", simulator.api_key)
    db = tmp_path / "probe.db"
    with ProbeStore.open(db) as store:
        store.record_run(make_run(time.time(), target=SIMULATED_KEY, cost_usd=1000.0))
    assert main(["probe", "--once", "--db", str(db), "--probe", "non_streaming"]) == 0
    with ProbeStore.open(db) as store:
        assert store.count_runs() > 1  # it probed


class _BrokenOnce:
    """A prober whose first cycle dies on the store (a read that failed), then works."""

    def __init__(self, result: Any) -> None:
        self.calls = 0
        self.result = result

    def run_cycle(self, now: float, *, cancel: threading.Event) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return self.result


def test_the_loop_reports_a_store_error_and_goes_on(clock: FakeClock) -> None:
    prober = _BrokenOnce(result="cycle 2")
    errors: list[sqlite3.Error] = []
    cycles: list[Any] = []
    # Due at once, then every 60 s; each wait is a no-op stop event driven by the fake clock.
    scheduler = Scheduler(clock=clock, rng=random.Random(0), interval_s=60, jitter=0.0)

    class _Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            clock.advance(timeout or 0.0)
            return self.is_set()

    count = run_loop(
        prober=prober,  # type: ignore[arg-type]
        scheduler=scheduler,
        clock=clock,
        stop=_Stop(),
        on_cycle=cycles.append,
        on_store_error=errors.append,
        max_cycles=2,
    )
    assert count == 2
    assert [str(error) for error in errors] == ["disk I/O error"]
    assert cycles == ["cycle 2"]


class _HeldByTheEndpoint:
    """A cycle whose probe the endpoint holds until the test releases it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def run_cycle(self, now: float, *, cancel: threading.Event) -> Any:
        self.started.set()
        self.release.wait(30)
        return "late"


def test_a_stop_is_not_held_up_by_a_probe_the_endpoint_holds(clock: FakeClock) -> None:
    # A request the endpoint holds lasts up to total_ms (60 s by default), more with a retry: a
    # SIGTERM must stop the loop within the grace, not when the endpoint lets go.
    prober = _HeldByTheEndpoint()
    stop = threading.Event()
    abandoned: list[bool] = []
    cycles: list[Any] = []
    scheduler = Scheduler(clock=clock, rng=random.Random(0), interval_s=60, jitter=0.0)
    loop = threading.Thread(
        target=run_loop,
        kwargs={
            "prober": prober,
            "scheduler": scheduler,
            "clock": clock,
            "stop": stop,
            "on_cycle": cycles.append,
            "on_abandoned": lambda: abandoned.append(True),
            "stop_grace_s": 0.05,
        },
        daemon=True,
    )
    loop.start()
    try:
        assert prober.started.wait(10)
        stop.set()
        loop.join(10)
        assert not loop.is_alive()
        assert abandoned == [True]
        assert cycles == []  # the held probe reached no verdict: nothing reported
    finally:
        prober.release.set()


def test_a_probe_that_finishes_within_the_grace_is_kept(clock: FakeClock) -> None:
    prober = _HeldByTheEndpoint()
    prober.release.set()
    stop = threading.Event()
    cycles: list[Any] = []

    def on_cycle(result: Any) -> None:
        cycles.append(result)
        stop.set()

    scheduler = Scheduler(clock=clock, rng=random.Random(0), interval_s=60, jitter=0.0)
    count = run_loop(prober=prober, scheduler=scheduler, clock=clock, stop=stop, on_cycle=on_cycle)  # type: ignore[arg-type]
    assert (count, cycles) == (1, ["late"])


def test_probe_once_says_history_was_not_stored_and_exits_1(
    simulator: SimulatorServer,
    store: ProbeStore,
    make_prober: ProberFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prober = make_prober(target_for(simulator), kinds=("non_streaming",), large_every=0)
    FullDisk(store).full = True
    assert probe_cmd._once(prober, store) == 1
    out, err = capsys.readouterr()
    assert "pass  non_streaming" in out  # the verdict is still printed
    assert err.strip() == f"history not stored: probe store {store.path}: database or disk is full"


def test_probe_says_which_stored_runs_it_does_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "probe.db"
    with ProbeStore.open(db) as store:
        store.record_run(make_run(time.time() - 60, target=None))  # an older chatcontract's
        store.record_run(make_run(time.time() - 60, target="https://x.example/v1 model=m"))
    assert main(["probe", "--once", "--db", str(db), "--probe", "non_streaming"]) == 0
    _out, err = capsys.readouterr()
    assert (
        "not counted for this target (page, cost, drift): 1 of other targets, "
        "1 of an unknown target (recorded by an older chatcontract) probe run(s)"
    ) in err


def test_a_storage_outage_is_logged_once(
    simulator: SimulatorServer,
    store: ProbeStore,
    make_prober: ProberFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    prober = make_prober(target_for(simulator), kinds=("non_streaming",), large_every=0)
    FullDisk(store).full = True
    with caplog.at_level(logging.WARNING, logger="chatcontract.probe"):
        prober.run_cycle()
        prober.run_cycle()
    failures = [record for record in caplog.records if "writes fail" in record.getMessage()]
    assert len(failures) == 1


def _priced_prober(
    simulator: SimulatorServer, make_prober: ProberFactory, registry: CollectorRegistry
) -> Prober:
    """A probe whose first call reaches the daily cap (~40 tokens at $100/M, cap $0.001)."""
    base = contract_for(simulator)
    prices = {
        model: Prices(input_per_million=100.0, output_per_million=100.0)
        for model in ("gpt-4.1-nano", "gpt-4o-mini")
    }
    probe = dataclasses.replace(base.policy.probe, daily_cost_cap_usd=0.001)  # one probe
    contract = dataclasses.replace(
        base, policy=dataclasses.replace(base.policy, prices=prices, probe=probe)
    )
    return make_prober(
        target_for(simulator, contract=contract),
        registry=registry,
        kinds=("non_streaming",),
        large_every=0,
    )


def test_the_daily_cost_cap_counts_spend_the_full_disk_did_not_record(
    simulator: SimulatorServer, store: ProbeStore, make_prober: ProberFactory, clock: FakeClock
) -> None:
    # The cap read the day's spend from the store alone: with the disk full no probe's cost was
    # recorded, so a probe against a priced endpoint never paused, however much it spent.
    registry = CollectorRegistry()
    prober = _priced_prober(simulator, make_prober, registry)
    FullDisk(store).full = True

    first = prober.run_cycle()
    assert len(first.outcomes) == 1 and first.paused
    clock.advance(60)  # the same UTC day: nothing more is sent
    assert prober.run_cycle().outcomes == ()
    assert sample_value(registry, "probe_paused", reason="daily_cost_cap") == 1.0
    assert store.count_runs() == 0  # nothing was recorded

    clock.advance(120)  # past midnight UTC: a new day's cap
    assert len(prober.run_cycle().outcomes) == 1


async def test_the_page_says_paused_when_the_unrecorded_spend_reached_the_cap(
    simulator: SimulatorServer, store: ProbeStore, make_prober: ProberFactory, clock: FakeClock
) -> None:
    # /api/summary read the spend from the store alone: the prober paused while the page
    # said "not paused" and a cost of $0 today.
    registry = CollectorRegistry()
    prober = _priced_prober(simulator, make_prober, registry)
    FullDisk(store).full = True
    assert prober.run_cycle().paused
    app = _app(store, prober, registry, clock)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://probe") as client:
        cost = (await client.get("/api/summary")).json()["cost"]
    assert cost["paused"] is True
    assert cost["spent_today_usd"] >= cost["daily_cap_usd"] > 0
