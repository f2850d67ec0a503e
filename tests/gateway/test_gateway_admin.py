"""The gateway's admin port: /metrics, /healthz, /readyz, /workers and the kill switch, served
beside the chat app (in process, and as ``chatcontract gateway --admin``)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from gateway_helpers import (
    BACKUP_MODEL,
    FULL,
    PROMPT,
    TIMEOUTS,
    contract_for,
    env_for,
    eventually,
    raw_request,
)
from gateway_process import GatewayProcess, contract_file, metric
from prometheus_client import CollectorRegistry

from chatcontract.cli import gateway_cmd, main
from chatcontract.gateway import GatewayServer, GatewayState, create_app
from chatcontract.gateway.admin import DEFAULT_ADMIN, AdminApp, AdminServer, LocalAdmin, bind_admin
from chatcontract.gateway.metrics import GatewayMetrics
from chatcontract.telemetry import PrometheusSink


@dataclass
class Served:
    """A gateway and its admin port, in process."""

    state: GatewayState
    chat: GatewayServer
    admin: AdminServer

    def call(self, **extra: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
        body = json.dumps({"model": "gpt-4.1-nano", "messages": PROMPT, **extra}).encode()
        status, headers, data = raw_request(
            self.chat.root_url,
            "POST",
            "/v1/chat/completions",
            body,
            {"content-type": "application/json"},
        )
        return status, headers, json.loads(data)

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        return raw_request(self.admin.root_url, "GET", path)

    def get_json(self, path: str) -> tuple[int, Any]:
        status, _, data = self.get(path)
        return status, json.loads(data)

    def post_json(self, path: str, body: bytes) -> tuple[int, Any]:
        status, _, data = raw_request(
            self.admin.root_url, "POST", path, body, {"content-type": "application/json"}
        )
        return status, json.loads(data)

    def metrics(self) -> str:
        status, headers, data = self.get("/metrics")
        assert status == 200
        assert headers["content-type"].startswith("text/plain; version=")
        return data.decode()


@pytest.fixture
def serve_admin() -> Iterator[Any]:
    """``serve_admin(contract, environ)``: a gateway and its admin port, stopped after."""
    running: list[Served] = []

    def make(contract: Any, environ: dict[str, str], **options: Any) -> Served:
        registry = CollectorRegistry()
        sink = PrometheusSink(registry, contract=contract)
        state = GatewayState(contract, environ=environ, telemetry_sinks=[sink], **options)
        GatewayMetrics(registry, state)
        chat = GatewayServer(create_app(state)).start()
        admin = AdminServer(AdminApp(LocalAdmin(state, registry)), bind_admin("127.0.0.1", 0))
        served = Served(state, chat, admin.start())
        running.append(served)
        return served

    yield make
    for served in running:
        served.admin.stop()
        served.chat.stop()


@pytest.fixture
def pair(sims, serve_admin) -> Served:
    """A gateway whose primary and backup routes both answer correctly."""
    primary, backup = sims("ok"), sims("ok", flavor="openai")
    contract = contract_for(primary.base_url, backup_url=backup.base_url)
    return serve_admin(contract, env_for(primary.api_key, backup.api_key))


# -- /metrics ---------------------------------------------------------------------------------


def test_metrics_has_the_llm_families_and_the_gateway_gauges_after_a_proxied_call(pair):
    assert pair.call()[0] == 200
    text = pair.metrics()
    call = {"route": "primary", "model": "gpt-4.1-nano", "stream": "false"}
    assert metric(text, "llm_request_total", **call) == 1
    assert metric(text, "llm_response_schema_valid_total", **call) == 1
    assert metric(text, "llm_latency_ms_count", outcome="success", **call) == 1
    assert metric(text, "llm_usage_completion_tokens_total", **call) is not None
    for gauge in (
        "llm_gateway_in_flight_requests",
        "llm_gateway_queued_requests",
        "llm_gateway_kill_switch",
    ):
        assert metric(text, gauge, provider="cometapi") == 0, gauge
    assert metric(text, "llm_gateway_ready", provider="cometapi") == 1
    spent = metric(text, "llm_gateway_budget_spent_usd", provider="cometapi")
    assert spent is not None and spent > 0


def test_the_in_flight_gauge_counts_a_call_being_served(sims, serve_admin):
    slow = sims("slow", delay_ms=1500)
    patient = replace(TIMEOUTS, first_byte_ms=5_000, first_token_ms=5_000, idle_ms=5_000)
    served = serve_admin(contract_for(slow.base_url, timeouts=patient), env_for(slow.api_key))
    done: list[int] = []
    caller = threading.Thread(target=lambda: done.append(served.call()[0]))
    caller.start()
    try:
        assert eventually(lambda: metric(served.metrics(), "llm_gateway_in_flight_requests") == 1)
    finally:
        caller.join(30)
    assert done == [200]
    assert metric(served.metrics(), "llm_gateway_in_flight_requests") == 0


def test_the_queued_gauge_counts_a_call_waiting_for_retry_after(fresh_sim, serve_admin):
    limited = fresh_sim("rate_limit_retry_after", flavor="openai")
    served = serve_admin(contract_for(limited.base_url), env_for(limited.api_key))
    done: list[int] = []
    caller = threading.Thread(target=lambda: done.append(served.call()[0]))
    caller.start()
    try:
        assert eventually(lambda: metric(served.metrics(), "llm_gateway_queued_requests") == 1)
    finally:
        caller.join(30)
    assert metric(served.metrics(), "llm_gateway_queued_requests") == 0
    assert len(done) == 1


# -- /healthz and /readyz ---------------------------------------------------------------------


def test_healthz_says_the_process_is_alive(pair):
    status, doc = pair.get_json("/healthz")
    assert status == 200
    assert doc["status"] == "ok" and doc["pid"] == os.getpid() and doc["uptime_s"] >= 0


def _open_every_breaker(state: GatewayState) -> None:
    for route in state.routes:
        for _ in range(state.contract.policy.breaker.failures):
            state.breakers.record_failure(route.name, "upstream")


def test_readyz_is_503_while_every_breaker_is_open_and_200_after(pair):
    assert pair.get_json("/readyz") == (
        200,
        {
            "ready": True,
            "routes": [
                {"route": "primary", "breaker": "closed"},
                {"route": "backup", "breaker": "closed"},
            ],
        },
    )
    _open_every_breaker(pair.state)
    status, doc = pair.get_json("/readyz")
    assert status == 503 and doc["ready"] is False
    assert doc["reason"] == "every route's circuit breaker is open"
    assert {route["breaker"] for route in doc["routes"]} == {"open"}
    assert metric(pair.metrics(), "llm_gateway_ready") == 0
    pair.state.breakers.record_success("backup")  # e.g. a trial call that worked
    assert pair.get_json("/readyz")[0] == 200


def test_readyz_turns_503_after_failing_upstream_calls_and_back_after_a_success(
    fresh_sim, serve_admin
):
    # One simulator for both routes: 500 on every request during its outage window, then ok.
    failing = fresh_sim("server_error")
    contract = contract_for(failing.base_url, backup_url=failing.base_url)
    served = serve_admin(contract, env_for(failing.api_key, failing.api_key))
    for _ in range(contract.policy.breaker.failures):
        assert served.call()[0] == 502
    status, doc = served.get_json("/readyz")
    assert status == 503
    assert [route["breaker"] for route in doc["routes"]] == ["open", "open"]
    assert metric(served.metrics(), "llm_circuit_breaker_state", route="primary") == 1
    upstream_calls = metric(served.metrics(), "llm_request_total")
    for _ in range(3):  # deciding readiness never calls upstream
        served.get_json("/readyz")
    assert metric(served.metrics(), "llm_request_total") == upstream_calls


def test_readyz_needs_no_upstream_call_when_the_upstream_is_down(serve_admin):
    # Nothing listens on the routes: readiness is read from the breakers, so it is 200.
    contract = contract_for("http://127.0.0.1:9/v1")
    served = serve_admin(contract, env_for("sk-unused"))
    assert served.get_json("/readyz")[0] == 200
    assert metric(served.metrics(), "llm_request_total") is None


# -- the kill switch --------------------------------------------------------------------------


def test_the_kill_switch_on_the_admin_port_skips_the_first_route(pair):
    assert pair.call()[1]["x-chatcontract-route"] == "primary"
    assert pair.post_json("/kill-switch", b'{"on": true}') == (
        200,
        {"on": True, "env": False, "effective": True},
    )
    status, headers, body = pair.call()
    assert (status, headers["x-chatcontract-route"]) == (200, "backup")
    assert body["model"].startswith(BACKUP_MODEL)
    assert body["choices"][0]["message"]["content"] == FULL
    assert metric(pair.metrics(), "llm_gateway_kill_switch") == 1
    assert pair.get_json("/kill-switch") == (200, {"on": True, "env": False, "effective": True})
    assert pair.post_json("/kill-switch", b'{"on": false}')[1]["on"] is False
    assert pair.call()[1]["x-chatcontract-route"] == "primary"


def test_the_kill_switch_variable_shows_on_the_admin_port(sims, serve_admin):
    primary, backup = sims("ok"), sims("ok", flavor="openai")
    contract = contract_for(primary.base_url, backup_url=backup.base_url)
    environ = env_for(primary.api_key, backup.api_key, CHATCONTRACT_KILL_SWITCH="1")
    served = serve_admin(contract, environ)
    assert served.get_json("/kill-switch") == (200, {"on": False, "env": True, "effective": True})


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/kill-switch", b'{"on": true}'),
        ("GET", "/kill-switch", None),
        ("POST", "/v1/kill-switch", b'{"on": true}'),
        ("POST", "/metrics", None),
        ("GET", "/readyz", None),
    ],
    ids=["post-kill-switch", "get-kill-switch", "v1-kill-switch", "metrics", "readyz"],
)
def test_admin_paths_are_not_served_on_the_client_port(pair, method, path, body):
    status, _, data = raw_request(pair.chat.root_url, method, path, body)
    assert status == 404
    assert json.loads(data)["error"]["type"] == "not_found_error"
    assert pair.state.kill_switch is False


def test_a_chat_request_cannot_set_the_kill_switch(pair):
    status, headers, _ = pair.call(kill_switch=True)
    assert pair.state.kill_switch is False
    if status == 200:
        assert headers["x-chatcontract-route"] == "primary"


@pytest.mark.parametrize(
    "body",
    [b"", b"on", b'{"on": 1}', b'{"on": "true"}', b'{"off": true}', b"[true]", b" " * 2000],
    ids=["empty", "not-json", "number", "string", "other-key", "list", "too-large"],
)
def test_a_bad_kill_switch_body_is_a_400_saying_what_to_send(pair, body):
    status, doc = pair.post_json("/kill-switch", body)
    assert status == 400
    assert doc == {"error": 'send a JSON body {"on": true} or {"on": false}'}
    assert pair.state.kill_switch is False


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("DELETE", "/kill-switch", 405), ("POST", "/readyz", 405)],
    ids=["unknown", "delete-kill-switch", "post-readyz"],
)
def test_unknown_admin_requests_get_a_json_error(pair, method, path, status):
    got, headers, data = raw_request(pair.admin.root_url, method, path)
    assert got == status
    assert "error" in json.loads(data)
    if status == 405:
        assert "allow" in headers


def test_workers_lists_this_process(pair):
    assert pair.call()[0] == 200
    status, doc = pair.get_json("/workers")
    assert status == 200
    assert doc["workers"] == [
        {"pid": os.getpid(), "in_flight": 0, "queued": 0, "served": 1, "ready": True}
    ]


# -- the CLI ----------------------------------------------------------------------------------


def test_the_cli_serves_the_admin_port_beside_the_gateway(simulator, tmp_path):
    path = contract_file(tmp_path, simulator.base_url)
    env = {**os.environ, "COMETAPI_KEY": simulator.api_key}
    env.pop("CHATCONTRACT_KILL_SWITCH", None)
    gateway = GatewayProcess(
        ["--contract", str(path), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"], env
    )
    try:
        assert gateway.admin_url.startswith("http://127.0.0.1:")
        assert gateway.chat()[0] == 200
        _, _, text = gateway.admin("GET", "/metrics")
        assert metric(text.decode(), "llm_request_total", route="primary") == 1
        assert gateway.admin_json("GET", "/readyz")[0] == 200
        assert gateway.admin_json("POST", "/kill-switch", {"on": True})[1]["on"] is True
        status, headers, _ = gateway.chat()
        assert (status, headers["x-chatcontract-route"]) == (200, "smaller-model")
        assert gateway.stop() == 0
    finally:
        gateway.close()


def test_admin_off_serves_no_admin_port(simulator, tmp_path):
    path = contract_file(tmp_path, simulator.base_url)
    env = {**os.environ, "COMETAPI_KEY": simulator.api_key}
    gateway = GatewayProcess(
        ["--contract", str(path), "--listen", "127.0.0.1:0", "--admin", "off"], env
    )
    try:
        assert gateway.admin_url == ""
        assert not any(line.startswith("  admin:") for line in gateway.banner)
        assert gateway.chat()[0] == 200
    finally:
        gateway.close()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--admin", "0.0.0.0:9465"], "is not a loopback address"),
        (["--admin", "192.0.2.1:0"], "add --admin-allow-remote"),
        (["--admin", "nonsense"], "--admin must be HOST:PORT"),
        (["--admin", "127.0.0.1:99999"], "--admin must be HOST:PORT"),
    ],
    ids=["any-address", "remote", "not-an-address", "bad-port"],
)
def test_bad_admin_settings_exit_2_with_one_line(args, says, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["gateway", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and "Traceback" not in err[0]


def test_a_remote_admin_address_is_accepted_with_the_explicit_flag():
    assert gateway_cmd.parse_admin("0.0.0.0:9465", allow_remote=True) == ("0.0.0.0", 9465)
    assert gateway_cmd.parse_admin("[::1]:9465", allow_remote=False) == ("::1", 9465)
    assert gateway_cmd.parse_admin("off", allow_remote=False) is None


def test_a_taken_admin_port_exits_2_naming_the_flag(simulator, tmp_path, capsys, monkeypatch):
    taken = bind_admin("127.0.0.1", 0)
    try:
        path = contract_file(tmp_path, simulator.base_url)
        monkeypatch.setenv("COMETAPI_KEY", simulator.api_key)
        port = taken.getsockname()[1]
        args = ["gateway", "--contract", str(path), "--listen", "127.0.0.1:0"]
        assert main([*args, "--admin", f"127.0.0.1:{port}"]) == 2
    finally:
        taken.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"admin port {port}" in err[0] and "--admin" in err[0]


def test_the_cli_admin_default_is_the_gateway_default():
    assert gateway_cmd.DEFAULT_ADMIN == DEFAULT_ADMIN == "127.0.0.1:9465"


@pytest.mark.parametrize(
    "browser",
    [
        {"origin": "https://evil.example", "content-type": "text/plain;charset=UTF-8"},
        {"origin": "null", "content-type": "application/x-www-form-urlencoded"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "http://rebound.example:9465", "content-type": "application/json"},
    ],
    ids=["no-cors-fetch", "sandboxed-form", "fetch-metadata-only", "dns-rebinding"],
)
def test_a_browser_page_cannot_set_the_kill_switch(pair, browser):
    # A page the operator opens can POST to 127.0.0.1 without a CORS preflight (a form, a
    # no-cors fetch): the admin port has no authentication, so a browser's POST is refused.
    status, _, data = raw_request(
        pair.admin.root_url, "POST", "/kill-switch", b'{"on": true}', browser
    )
    assert status == 403
    assert "browser" in json.loads(data)["error"]
    assert pair.state.kill_switch is False
    assert pair.get_json("/kill-switch")[1]["on"] is False  # reading it stays open


def test_the_kill_switch_is_set_as_the_readme_shows_it(pair):
    # curl -XPOST -d '{"on": true}': form-encoded, no Origin
    status, _, data = raw_request(
        pair.admin.root_url,
        "POST",
        "/kill-switch",
        b'{"on": true}',
        {"content-type": "application/x-www-form-urlencoded", "user-agent": "curl/8.5.0"},
    )
    assert status == 200 and json.loads(data)["on"] is True
    assert pair.state.kill_switch is True
