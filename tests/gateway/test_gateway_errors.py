"""Bad input and failed calls get OpenAI-shaped errors with a type a client can branch on;
a request the gateway or the contract rejects never goes upstream."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import openai
import pytest
from gateway_helpers import (
    BACKUP_MODEL,
    PROMPT,
    contract_for,
    env_for,
    error_of,
    eventually,
    raw_request,
)

from chatcontract.gateway import ERROR_TYPES

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}


def _body(**fields) -> bytes:
    return json.dumps({"messages": PROMPT, **fields}).encode()


@pytest.fixture
def plain(gateway, recorded):
    sim, upstream = recorded()
    backup, _ = recorded()
    contract = contract_for(sim.base_url, backup_url=backup.base_url)
    return gateway(contract, env_for(sim.api_key, backup.api_key), max_body_bytes=4096), upstream


REJECTED = [
    pytest.param(b"{not json", {}, 400, "invalid_request_error", "invalid_json", None, id="json"),
    pytest.param(b"[1, 2]", {}, 400, "invalid_request_error", "invalid_json", None, id="array"),
    pytest.param(
        b'{"messages": "hi"}', {}, 400, "invalid_request_error", "invalid_request", "messages",
        id="messages-not-a-list",
    ),
    pytest.param(
        _body(stream="yes"), {}, 400, "invalid_request_error", "invalid_request", "stream",
        id="stream-not-a-bool",
    ),
    pytest.param(
        json.dumps({"messages": [{"role": "user"}]}).encode(), {}, 400, "invalid_request_error",
        "invalid_request", None, id="contract-rejects-a-message",
    ),
    pytest.param(
        _body(model="gpt-unknown"), {}, 404, "not_found_error", "model_not_found", "model",
        id="unknown-model",
    ),
    pytest.param(
        _body(fallbacks=["gpt-5-pro"]), {}, 400, "invalid_request_error",
        "fallback_not_allowed", "fallbacks", id="fallback-not-in-contract",
    ),
    pytest.param(
        _body(fallbacks="backup"), {}, 400, "invalid_request_error", "invalid_request",
        "fallbacks", id="fallbacks-not-a-list",
    ),
    pytest.param(
        _body(), {"x-chatcontract-deadline-ms": "soon"}, 400, "invalid_request_error",
        "invalid_deadline", "x-chatcontract-deadline-ms", id="deadline-not-a-number",
    ),
    pytest.param(
        _body(), {"x-chatcontract-deadline-ms": "0"}, 400, "invalid_request_error",
        "invalid_deadline", "x-chatcontract-deadline-ms", id="deadline-zero",
    ),
    pytest.param(
        _body(), {"x-chatcontract-deadline-ms": "86400000"}, 400, "invalid_request_error",
        "invalid_deadline", "x-chatcontract-deadline-ms", id="deadline-too-long",
    ),
    pytest.param(
        _body(padding="x" * 5000), {}, 413, "request_too_large_error", "request_too_large", None,
        id="body-over-the-limit",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("body", "headers", "status", "type_", "code", "param"), REJECTED)
def test_a_rejected_request_gets_a_typed_error_and_never_goes_upstream(
    plain, body, headers, status, type_, code, param
):
    server, upstream = plain
    got, _, data = raw_request(server.root_url, "POST", CHAT, body, {**JSON, **headers})
    error = error_of(data)
    assert (got, error["type"], error["code"], error["param"]) == (status, type_, code, param)
    assert upstream.chat_requests() == []


def test_a_chunked_body_over_the_limit_gets_413(plain):
    server, upstream = plain
    import http.client

    connection = http.client.HTTPConnection(server.root_url.removeprefix("http://"), timeout=20)
    try:
        pieces = iter([b'{"messages": [], "p": "', b"x" * 3000, b"y" * 3000, b'"}'])
        connection.request("POST", CHAT, body=pieces, headers=JSON, encode_chunked=True)
        response = connection.getresponse()
        status, data = response.status, response.read()
    finally:
        connection.close()
    assert status == 413
    assert error_of(data)["type"] == "request_too_large_error"
    assert upstream.chat_requests() == []


def test_the_error_messages_say_what_to_write(plain):
    server, _ = plain
    _, _, data = raw_request(
        server.root_url, "POST", CHAT, _body(), {**JSON, "x-chatcontract-deadline-ms": "soon"}
    )
    assert "x-chatcontract-deadline-ms: 30000" in error_of(data)["message"]
    _, _, data = raw_request(server.root_url, "POST", CHAT, _body(fallbacks=["nope"]), JSON)
    assert "backup" in error_of(data)["message"]


@pytest.mark.parametrize(
    ("method", "path", "status", "type_"),
    [
        ("POST", "/v1/embeddings", 404, "not_found_error"),
        ("GET", "/", 404, "not_found_error"),
        ("GET", CHAT, 405, "method_not_allowed_error"),
        ("DELETE", "/v1/models", 405, "method_not_allowed_error"),
    ],
    ids=["unknown-path", "root", "get-chat", "delete-models"],
)
def test_unknown_paths_and_methods_get_typed_errors(plain, method, path, status, type_):
    server, _ = plain
    got, headers, data = raw_request(server.root_url, method, path, None, {})
    assert (got, error_of(data)["type"]) == (status, type_)
    if status == 405:
        assert headers["allow"] in {"POST", "GET, HEAD"}


def test_every_error_type_is_documented():
    text = (Path(__file__).resolve().parents[2] / "docs" / "gateway.md").read_text("utf-8")
    assert all(f"`{name}`" in text for name in ERROR_TYPES)


# -- fallbacks and deadline per request ------------------------------------------------------


@pytest.fixture
def down(gateway, recorded):
    """A primary that always answers 503, and a healthy backup."""
    sim, upstream = recorded("upstream_unavailable")
    backup, backup_upstream = recorded()
    contract = contract_for(sim.base_url, backup_url=backup.base_url)
    server = gateway(contract, env_for(sim.api_key, backup.api_key))
    return server, upstream, backup_upstream


def test_fallbacks_in_the_body_pick_the_route_and_are_never_forwarded(down):
    server, upstream, backup = down
    status, headers, _ = raw_request(
        server.root_url, "POST", CHAT, _body(fallbacks=[BACKUP_MODEL]), JSON
    )
    assert status == 200 and headers["x-chatcontract-route"] == "backup"
    sent = [json.loads(body) for _, body in upstream.chat_requests() + backup.chat_requests()]
    assert sent and all("fallbacks" not in body for body in sent)


def test_an_empty_fallbacks_list_means_no_fallback(down):
    server, upstream, backup = down
    status, headers, data = raw_request(server.root_url, "POST", CHAT, _body(fallbacks=[]), JSON)
    assert status == 502
    error = error_of(data)
    _, category, code = headers["x-chatcontract-classification"].split("/")
    assert (error["type"], category, error["code"]) == ("upstream_error", "upstream", code)
    assert headers["x-chatcontract-route"] == "primary"
    assert int(headers["x-chatcontract-attempts"]) == len(upstream.chat_requests())
    assert backup.chat_requests() == []


def test_the_deadline_header_bounds_the_call(gateway, sims):
    silent = sims("no_response", time_scale=0.01)
    server = gateway(contract_for(silent.base_url), env_for(silent.api_key))
    headers = {**JSON, "x-chatcontract-deadline-ms": "300"}
    status, found, data = raw_request(server.root_url, "POST", CHAT, _body(), headers)
    assert status == 504
    assert error_of(data)["type"] == "timeout_error"
    assert found["x-chatcontract-classification"].startswith("transport/timeout/")


# -- failures upstream ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "status", "type_", "code"),
    [
        ("rate_limit", 429, "rate_limit_error", None),
        ("quota_exhausted", 429, "insufficient_quota", None),
        ("server_error", 502, "upstream_error", None),
        ("content_policy", 400, "invalid_request_error", "content_policy_violation"),
        ("context_length", 400, "invalid_request_error", "context_length_exceeded"),
    ],
    ids=["rate-limit", "quota", "500", "content-policy", "context-length"],
)
def test_an_upstream_failure_maps_to_a_status_and_type_by_its_class(
    gateway, sims, scenario, status, type_, code
):
    sim = sims(scenario)
    server = gateway(contract_for(sim.base_url), env_for(sim.api_key))
    model = server.app.state.routes[0].model
    with (
        openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client,
        pytest.raises(openai.APIStatusError) as caught,
    ):
        client.chat.completions.create(model=model, messages=PROMPT)
    error = caught.value
    assert (error.status_code, error.type) == (status, type_)
    if code is not None:
        assert error.code == code
    assert error.response.headers["x-chatcontract-classification"].count("/") == 2


def test_a_provider_key_the_provider_refuses_is_the_gateways_problem_not_the_clients(gateway, sims):
    sim = sims()
    server = gateway(contract_for(sim.base_url), env_for("sk-wrong-provider-key"))
    status, _, data = raw_request(server.root_url, "POST", CHAT, _body(), JSON)
    error = error_of(data)
    assert (status, error["type"]) == (502, "upstream_error")
    assert "sk-wrong-provider-key" not in data.decode()


# -- kill switch ---------------------------------------------------------------------------


def test_the_contracts_kill_switch_variable_skips_the_primary(gateway, recorded):
    sim, upstream = recorded()
    backup, backup_upstream = recorded()
    contract = contract_for(sim.base_url, backup_url=backup.base_url)
    env = env_for(sim.api_key, backup.api_key, CHATCONTRACT_KILL_SWITCH="1")
    server = gateway(contract, env)
    status, headers, _ = raw_request(server.root_url, "POST", CHAT, _body(), JSON)
    assert (status, headers["x-chatcontract-route"]) == (200, "backup")
    assert upstream.chat_requests() == [] and len(backup_upstream.chat_requests()) == 1


def test_the_kill_switch_without_a_fallback_refuses_with_its_own_type(gateway, recorded):
    sim, upstream = recorded()
    env = env_for(sim.api_key, CHATCONTRACT_KILL_SWITCH="on")
    server = gateway(contract_for(sim.base_url), env)
    status, _, data = raw_request(server.root_url, "POST", CHAT, _body(), JSON)
    assert (status, error_of(data)["type"]) == (503, "kill_switch_error")
    assert upstream.chat_requests() == []


def test_a_kill_switch_refusal_names_the_switch_that_is_on(gateway, recorded):
    # The admin port's switch is not the contract's variable: the message says which is on.
    sim, upstream = recorded()
    server = gateway(contract_for(sim.base_url), env_for(sim.api_key))
    server.app.state.kill_switch = True
    status, _, data = raw_request(server.root_url, "POST", CHAT, _body(), JSON)
    message = error_of(data)["message"]
    assert status == 503
    assert "admin port" in message and "$CHATCONTRACT_KILL_SWITCH" not in message
    assert upstream.chat_requests() == []


def test_a_kill_switch_refusal_with_a_fallback_declared_says_the_call_named_none(gateway, recorded):
    sim, upstream = recorded()
    backup, backup_upstream = recorded()
    contract = contract_for(sim.base_url, backup_url=backup.base_url)
    env = env_for(sim.api_key, backup.api_key, CHATCONTRACT_KILL_SWITCH="1")
    server = gateway(contract, env)
    status, _, data = raw_request(server.root_url, "POST", CHAT, _body(fallbacks=[]), JSON)
    message = error_of(data)["message"]
    assert (status, error_of(data)["type"]) == (503, "kill_switch_error")
    assert "$CHATCONTRACT_KILL_SWITCH" in message and "fallbacks name none" in message
    assert "admin port" not in message
    assert upstream.chat_requests() == [] and backup_upstream.chat_requests() == []


def test_the_admin_kill_switch_flag_is_read_on_every_call(gateway, recorded):
    sim, upstream = recorded()
    server = gateway(contract_for(sim.base_url), env_for(sim.api_key))
    server.app.state.kill_switch = True
    status, _, data = raw_request(server.root_url, "POST", CHAT, _body(), JSON)
    assert (status, error_of(data)["type"]) == (503, "kill_switch_error")
    server.app.state.kill_switch = False
    assert raw_request(server.root_url, "POST", CHAT, _body(), JSON)[0] == 200
    assert len(upstream.chat_requests()) == 1


def test_no_request_field_or_header_turns_the_kill_switch_on(gateway, recorded):
    sim, upstream = recorded()
    server = gateway(contract_for(sim.base_url), env_for(sim.api_key))
    headers = {**JSON, "x-chatcontract-kill-switch": "1", "CHATCONTRACT_KILL_SWITCH": "1"}
    status, _, _ = raw_request(server.root_url, "POST", CHAT, _body(), headers)
    assert status == 200 and len(upstream.chat_requests()) == 1


def test_a_required_field_of_the_contract_is_enforced_before_sending(gateway, recorded):
    sim, upstream = recorded()
    base = contract_for(sim.base_url)
    contract = replace(
        base, request=replace(base.request, required=(*base.request.required, "max_tokens"))
    )
    server = gateway(contract, env_for(sim.api_key))
    status, _, data = raw_request(server.root_url, "POST", CHAT, _body(), JSON)
    assert status == 400 and "max_tokens" in error_of(data)["message"]
    assert raw_request(server.root_url, "POST", CHAT, _body(max_tokens=16), JSON)[0] == 200
    assert len(upstream.chat_requests()) == 1


# -- the gateway's own failures ------------------------------------------------------------


def test_a_bug_in_a_non_streamed_call_is_a_500_gateway_error(gateway, sims, monkeypatch):
    sim = sims()
    server = gateway(contract_for(sim.base_url), env_for(sim.api_key))

    async def broken(call):
        raise RuntimeError("sk-secret-in-a-bug")

    monkeypatch.setattr(server.app.state.upstream, "complete_body", broken)
    status, _, data = raw_request(server.root_url, "POST", CHAT, _body(), JSON)
    error = error_of(data)
    assert (status, error["type"], error["code"]) == (500, "gateway_error", "internal_error")
    assert "RuntimeError" in error["message"] and "sk-secret" not in error["message"]
    assert eventually(lambda: server.app.state.in_flight == 0)


def test_a_bug_after_a_stream_started_ends_it_with_an_in_band_error(gateway, sims, monkeypatch):
    from chatcontract.gateway import app as gateway_app

    class BreaksLater(gateway_app.ChunkForwarder):
        calls = 0

        def encode(self, payloads):
            BreaksLater.calls += 1
            if BreaksLater.calls == 3:
                raise RuntimeError("bug")
            return super().encode(payloads)

    monkeypatch.setattr(gateway_app, "ChunkForwarder", BreaksLater)
    # Chunks spread over 400 ms: one read each, whatever the wire coalesces, so the third
    # forwarding comes after text reached the client.
    sim = sims("slow", delay_ms=400)
    server = gateway(contract_for(sim.base_url), env_for(sim.api_key))
    status, headers, data = raw_request(server.root_url, "POST", CHAT, _body(stream=True), JSON)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = [e.removeprefix("data: ") for e in data.decode().split("\n\n") if e]
    assert json.loads(events[-1])["error"]["type"] == "gateway_error"
    assert "[DONE]" not in events


def test_usage_is_asked_upstream_even_when_the_client_did_not(gateway, recorded):
    sim, upstream = recorded()
    server = gateway(contract_for(sim.base_url), env_for(sim.api_key))
    status, _, data = raw_request(server.root_url, "POST", CHAT, _body(stream=True), JSON)
    assert status == 200 and b'"usage":{' not in data and b'"usage"' not in data
    [(_, sent)] = upstream.chat_requests()
    assert json.loads(sent)["stream_options"] == {"include_usage": True}


def test_a_recovered_call_reports_its_attempts_and_the_route_that_answered(down):
    server, upstream, backup = down
    status, headers, _ = raw_request(server.root_url, "POST", CHAT, _body(), JSON)
    assert (status, headers["x-chatcontract-route"]) == (200, "backup")
    attempts = len(upstream.chat_requests()) + len(backup.chat_requests())
    assert int(headers["x-chatcontract-attempts"]) == attempts >= 2
    assert headers["x-chatcontract-classification"] == "success"


def test_a_budget_cap_refuses_before_sending_with_its_own_type(gateway, recorded):
    sim, upstream = recorded()
    base = contract_for(sim.base_url)
    caps = replace(base.policy.caps, max_tokens_per_call=50)
    contract = replace(base, policy=replace(base.policy, caps=caps))
    server = gateway(contract, env_for(sim.api_key))
    status, headers, data = raw_request(server.root_url, "POST", CHAT, _body(max_tokens=500), JSON)
    error = error_of(data)
    assert (status, error["type"], error["code"]) == (
        429,
        "budget_exceeded_error",
        "max_tokens_cap",
    )
    assert "max_tokens_per_call" in error["message"]
    assert (headers["x-chatcontract-attempts"], headers["x-chatcontract-route"]) == ("0", "primary")
    assert upstream.chat_requests() == []
