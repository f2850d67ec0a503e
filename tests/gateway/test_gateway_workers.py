"""``chatcontract gateway --workers N``: pre-forked workers on one socket, supervised; budgets
held for the gateway as a whole; metrics and the kill switch across workers.

To know which worker serves a call, every other worker is paused (SIGSTOP) while it is made:
the kernel then hands the connection to the one worker still accepting.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import select
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from gateway_helpers import PROMPT, raw_request
from gateway_process import (
    GatewayProcess,
    contract_file,
    eventually,
    metric,
    process_alive,
)

from chatcontract.cli import main
from chatcontract.contract import load_preset
from chatcontract.gateway.workers import SharedStore
from chatcontract.policy.budget import DAY_S, BudgetGuard
from chatcontract.simulator import SimulatorServer
from chatcontract.wire import Usage

# -- helpers ----------------------------------------------------------------------------------


@contextmanager
def only(gateway: GatewayProcess, worker: int) -> Iterator[None]:
    """While inside, only worker ``worker`` accepts connections (the others are paused)."""
    paused = [pid for i, pid in enumerate(gateway.worker_pids) if i != worker]
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)


def _env(simulator: SimulatorServer) -> dict[str, str]:
    env = {**os.environ, "COMETAPI_KEY": simulator.api_key}
    env.pop("CHATCONTRACT_KILL_SWITCH", None)
    return env


@pytest.fixture
def start(simulator, tmp_path) -> Iterator[object]:
    """``start(*args, contract=path)``: a gateway subprocess on free ports, closed after."""
    started: list[GatewayProcess] = []

    def run(*args: str, contract: Path | None = None) -> GatewayProcess:
        path = contract or contract_file(tmp_path, simulator.base_url)
        gateway = GatewayProcess(
            ["--contract", str(path), "--listen", "127.0.0.1:0", *args], _env(simulator)
        )
        started.append(gateway)
        return gateway

    yield run
    for gateway in started:
        gateway.close()


def _completion_tokens(simulator: SimulatorServer) -> int:
    body = json.dumps({"model": "gpt-4.1-nano", "messages": PROMPT}).encode()
    headers = {"authorization": f"Bearer {simulator.api_key}", "content-type": "application/json"}
    status, _, data = raw_request(
        simulator.base_url.removesuffix("/v1"), "POST", "/v1/chat/completions", body, headers
    )
    assert status == 200
    return int(json.loads(data)["usage"]["completion_tokens"])


# -- budgets across workers -------------------------------------------------------------------


def test_a_daily_budget_holds_for_all_workers_together(start, simulator, tmp_path):
    # A completion token costs $0.10 on both routes; a call asks max_tokens = its answer's
    # length, so it costs (about) U = 0.1 * length and its worst case is U. A daily cap of
    # 2.5 U allows two calls: the third is refused whichever worker serves it. Workers with a
    # budget each would let each of them spend 2 U (the third call, on worker 0, would pass).
    tokens = _completion_tokens(simulator)
    unit = 0.1 * tokens
    cap = 2.5 * unit
    path = contract_file(
        tmp_path,
        simulator.base_url,
        [
            ("max_cost_per_call_usd: 0.05", "max_cost_per_call_usd: null"),
            ("max_cost_per_day_usd: 20.0", f"max_cost_per_day_usd: {cap}"),
            ("output_per_million: 0.32", "output_per_million: 100000.0"),
            ("output_per_million: 0.48", "output_per_million: 100000.0"),
        ],
    )
    gateway = start("--workers", "2", "--admin", "127.0.0.1:0", contract=path)
    assert len(gateway.worker_pids) == 2
    statuses = []
    for worker in (0, 1, 0, 1):
        with only(gateway, worker):
            status, _, body = gateway.chat(max_tokens=tokens)
        statuses.append((worker, status, body.get("error", {}).get("type")))
    assert statuses == [
        (0, 200, None),
        (1, 200, None),
        (0, 429, "budget_exceeded_error"),
        (1, 429, "budget_exceeded_error"),
    ]
    _, _, text = gateway.admin("GET", "/metrics")
    spent = metric(text.decode(), "llm_gateway_budget_spent_usd")
    assert spent is not None and 2 * unit <= spent < cap
    refused = metric(text.decode(), "llm_budget_refusal_total", reason="daily_cost_cap")
    assert refused == 2  # one per refused call


# -- metrics, readiness and the kill switch across workers ------------------------------------


def test_admin_metrics_add_up_every_workers_calls(start):
    gateway = start("--workers", "2", "--admin", "127.0.0.1:0")
    for worker in (0, 1, 1):
        with only(gateway, worker):
            assert gateway.chat()[0] == 200
    status, headers, text = gateway.admin("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    exposition = text.decode()
    assert metric(exposition, "llm_request_total", route="primary", stream="false") == 3
    assert metric(exposition, "llm_latency_ms_count", outcome="success") == 3
    assert metric(exposition, "llm_gateway_workers") == 2
    assert metric(exposition, "llm_gateway_in_flight_requests") == 0
    _, doc = gateway.admin_json("GET", "/workers")
    served = {worker["index"]: worker["served"] for worker in doc["workers"]}
    assert served == {0: 1, 1: 2}


def test_the_kill_switch_reaches_every_worker(start):
    gateway = start("--workers", "2", "--admin", "127.0.0.1:0")
    for worker in (0, 1):  # never settable on the client port, whichever worker answers
        with only(gateway, worker):
            status, _, _ = raw_request(gateway.root_url, "POST", "/kill-switch", b'{"on": true}')
        assert status == 404
    assert gateway.admin_json("GET", "/kill-switch")[1]["on"] is False
    assert gateway.admin_json("POST", "/kill-switch", {"on": True}) == (
        200,
        {"on": True, "env": False, "effective": True},
    )
    for worker in (0, 1):
        with only(gateway, worker):
            status, headers, _ = gateway.chat()
        assert (status, headers["x-chatcontract-route"]) == (200, "smaller-model")
    gateway.admin_json("POST", "/kill-switch", {"on": False})
    for worker in (0, 1):
        with only(gateway, worker):
            status, headers, _ = gateway.chat()
        assert (status, headers["x-chatcontract-route"]) == (200, "primary")


def test_readyz_answers_for_the_workers(start):
    gateway = start("--workers", "2", "--admin", "127.0.0.1:0")
    status, doc = gateway.admin_json("GET", "/readyz")
    assert status == 200 and doc["ready"] is True
    assert {(route["worker"], route["route"]) for route in doc["routes"]} == {
        (0, "primary"), (0, "smaller-model"), (1, "primary"), (1, "smaller-model"),
    }  # fmt: skip


def test_readyz_is_503_only_when_every_worker_has_every_breaker_open(start, tmp_path):
    failing = SimulatorServer(scenario="server_error").start()
    port = failing.port
    replacement: SimulatorServer | None = None
    try:
        path = contract_file(
            tmp_path,
            failing.base_url,
            [
                ("    failures: 3", "    failures: 1"),
                ("    cooldown_ms: 10000", "    cooldown_ms: 3000"),
                ("    max_attempts: 2", "    max_attempts: 1"),
            ],
        )
        # A cool-down long enough that worker 0 is still open when worker 1 fails, however
        # loaded the machine; the recovery below waits it out.
        gateway = start("--workers", "2", "--admin", "127.0.0.1:0", contract=path)
        assert gateway.admin_json("GET", "/readyz")[0] == 200
        with only(gateway, 0):
            assert gateway.chat()[0] == 502  # both routes failed: worker 0's breakers open
        status, doc = gateway.admin_json("GET", "/readyz")
        assert status == 200  # worker 1 can still serve
        assert {r["breaker"] for r in doc["routes"] if r["worker"] == 0} == {"open"}
        with only(gateway, 1):
            assert gateway.chat()[0] == 502
        status, doc = gateway.admin_json("GET", "/readyz")
        assert status == 503
        assert doc["reason"] == "every route's circuit breaker is open in every worker"
        _, _, text = gateway.admin("GET", "/metrics")
        assert metric(text.decode(), "llm_gateway_ready") == 0
        # The upstream recovers (a healthy simulator on the same port): one trial call on
        # worker 0 after the cool-down closes its primary breaker.
        failing.stop()
        replacement = SimulatorServer(scenario="ok", port=port).start()
        with only(gateway, 0):
            assert eventually(lambda: gateway.chat()[0] == 200)
        assert gateway.admin_json("GET", "/readyz")[0] == 200
    finally:
        failing.stop()
        if replacement is not None:
            replacement.stop()


def test_merged_metrics_sum_counters_and_keep_the_worst_breaker_state():
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

    from chatcontract.gateway.metrics import exposition, merge

    texts = []
    for calls, breaker, in_flight in ((2, 0, 1), (3, 1, 4)):
        registry = CollectorRegistry()
        Counter("llm_request", "", ["route"], registry=registry).labels("primary").inc(calls)
        state = Gauge("llm_circuit_breaker_state", "", ["route"], registry=registry)
        state.labels("primary").set(breaker)
        flight = Gauge("llm_gateway_in_flight_requests", "", ["provider"], registry=registry)
        flight.labels("cometapi").set(in_flight)
        texts.append(generate_latest(registry).decode())
    merged = exposition(merge(texts)).decode()
    assert metric(merged, "llm_request_total", route="primary") == 5
    assert metric(merged, "llm_circuit_breaker_state", route="primary") == 1
    assert metric(merged, "llm_gateway_in_flight_requests") == 5


# -- supervision ------------------------------------------------------------------------------


def test_a_killed_worker_is_started_again(start):
    gateway = start("--workers", "2", "--admin", "127.0.0.1:0")
    victim = gateway.worker_pids[0]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        _, doc = gateway.admin_json("GET", "/workers")
        first = doc["workers"][0]
        return first["answering"] and first["pid"] != victim

    assert eventually(replaced)
    _, doc = gateway.admin_json("GET", "/workers")
    gateway.worker_pids = [worker["pid"] for worker in doc["workers"]]
    with only(gateway, 0):  # the new worker serves
        assert gateway.chat()[0] == 200
    _, _, text = gateway.admin("GET", "/metrics")
    assert metric(text.decode(), "llm_gateway_worker_restarts_total") == 1
    assert any(f"worker 0 (pid {victim}) exited" in line for line in gateway.seen + gateway.rest())


@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
    ids=["sigterm", "sigint", "ctrl-c-to-the-process-group"],
)
def test_a_signal_stops_every_worker_and_the_parent(start, sig, group):
    gateway = start("--workers", "2", "--admin", "127.0.0.1:0")
    pids = list(gateway.worker_pids)
    assert all(process_alive(pid) for pid in pids)
    assert gateway.stop(sig, group=group) == 0
    lines = gateway.rest()
    assert "chatcontract gateway stopped" in lines
    assert not any("starting it again" in line for line in lines)
    assert not any(process_alive(pid) for pid in pids)


def _store_directory(pid: int) -> Path:
    """The shared store's directory, from the files a worker holds open."""
    fds = Path(f"/proc/{pid}/fd")
    (store,) = {
        Path(os.readlink(fd)) for fd in fds.iterdir() if os.readlink(fd).endswith("/shared.bin")
    }
    return store.parent


def test_workers_stop_when_their_parent_is_killed(start):
    gateway = start("--workers", "2", "--admin", "off")
    pids = list(gateway.worker_pids)
    directory = _store_directory(pids[0])
    assert directory.name.startswith("chatcontract-gateway-") and directory.is_dir()
    gateway.process.kill()  # no chance to stop them: each notices its pipe closing
    gateway.process.wait(10)
    assert eventually(lambda: not any(process_alive(pid) for pid in pids))
    assert not directory.exists()  # the parent could not remove it: its workers did


def test_workers_serve_with_the_admin_port_off(start):
    gateway = start("--workers", "2", "--admin", "off")
    assert not gateway.admin_url
    for worker in (0, 1):
        with only(gateway, worker):
            assert gateway.chat()[0] == 200


@pytest.mark.parametrize(
    "value", ["0", "65", "two", "-1", ""], ids=["zero", "above-64", "word", "negative", "empty"]
)
def test_bad_workers_exit_2_with_one_line(value, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["gateway", "--workers", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--workers must be a whole number from 1 to 64" in err[0]
    assert "Traceback" not in err[0]


# -- the shared store -------------------------------------------------------------------------


def _add_from_another_process(path: str, at: float, cost: float) -> None:
    SharedStore(path).add(at, cost)


def test_the_shared_store_sums_spend_from_other_processes(tmp_path):
    store = SharedStore.create(tmp_path)
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_add_from_another_process, args=(str(store.path), 1000.0, 1.5))
        for _ in range(3)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    store.add(1001.0, 0.25)
    assert store.total_since(0.0) == pytest.approx(4.75)
    store.close()


def test_the_shared_store_forgets_spend_older_than_a_day_within_a_minute(tmp_path):
    store = SharedStore.create(tmp_path)
    store.add(10.0, 1.0)  # minute 0
    store.add(200.0, 2.0)  # minute 3
    assert store.total_since(9.0) == 3.0
    assert store.total_since(59.0) == 3.0  # minute 0 ends at 60 s: still inside
    assert store.total_since(60.0) == 2.0
    store.add(DAY_S + 70.0, 0.5)  # minute 1441 reuses minute 0's slot
    assert store.total_since(70.0) == 2.5
    assert store.total_since(240.0) == 0.5  # minute 3 ended at 240 s
    assert store.total_since(3 * DAY_S) == 0.0  # a whole day later: nothing left
    store.add(3 * DAY_S + 5.0, 0.125)
    assert store.total_since(2 * DAY_S + 10.0) == 0.125
    store.close()


def test_the_shared_store_agrees_with_a_plain_sum_over_a_random_day(tmp_path):
    store = SharedStore.create(tmp_path)
    rng = random.Random(13)
    now, records = 1_000.0, []
    for _ in range(2_000):
        now += rng.choice([0.5, 7.0, 61.0, 900.0, 3_600.0, DAY_S / 3, DAY_S / 2 + 30])
        cost = rng.randrange(1, 5_000) / 1_000_000
        store.add(now, cost)
        records.append((now, cost))
        if rng.random() < 0.7:  # not read after every record: the horizon jumps further
            continue
        horizon = now - DAY_S
        cutoff = math.floor(horizon / 60)  # a minute counts while it ends after the horizon
        expected = sum(c for at, c in records if math.floor(at / 60) >= cutoff)
        assert store.total_since(horizon) == pytest.approx(expected, abs=1e-6)
    store.close()


def test_the_shared_store_holds_the_kill_switch_for_every_opener(tmp_path):
    store = SharedStore.create(tmp_path)
    other = SharedStore(store.path)
    assert other.value is False
    store.value = True
    assert other.value is True
    other.add(100.0, 1.0)  # spend records leave the switch as it is
    assert store.total_since(0.0) == 1.0
    assert store.value is True
    store.value = False
    assert other.value is False
    store.close()
    other.close()


def test_two_budget_guards_on_one_store_share_the_daily_cap(tmp_path):
    policy = load_preset("cometapi").policy
    store = SharedStore.create(tmp_path)
    clock = [100.0]
    first, second = (
        BudgetGuard(policy.caps, policy.prices, clock=lambda: clock[0], store=SharedStore(path))
        for path in (store.path, store.path)
    )
    first.record("gpt-4.1-nano", Usage(prompt_tokens=1_000_000, completion_tokens=0))
    assert second.spent_today() == pytest.approx(0.08)
    clock[0] += DAY_S + 60
    assert second.spent_today() == 0.0
    store.close()


def test_each_worker_keeps_the_connection_cap(start):
    # Two workers capped at one connection each: of three connections held open, one worker
    # has two, and refuses the second with the gateway's 503.
    gateway = start("--workers", "2", "--admin", "off", "--max-connections", "1")
    host, port = gateway.root_url.removeprefix("http://").rsplit(":", 1)
    held = [socket.create_connection((host, int(port)), timeout=10) for _ in range(3)]
    try:
        readable, _, _ = select.select(held, [], [], 10)
        assert readable, "no connection was refused"
        answer = readable[0].recv(65536)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b'"code":"too_many_connections"' in answer
    finally:
        for sock in held:
            sock.close()
