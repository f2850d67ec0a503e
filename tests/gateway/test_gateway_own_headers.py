"""Every gateway response carries the ``x-chatcontract-*`` headers: an answer the gateway gave
by itself (its own errors, ``/v1/models``) says that nothing went upstream (0 attempts, route
``none``) and names the rejection (``gateway/CODE``, the code of its JSON error)."""

from __future__ import annotations

import http.client
import json
from dataclasses import replace

import pytest
from gateway_helpers import PROMPT, contract_for, env_for, error_of, raw_request

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}
KEY = {"authorization": "Bearer gk-one"}


def _body(**fields: object) -> bytes:
    return json.dumps({"messages": PROMPT, **fields}).encode()


@pytest.fixture
def served(gateway, recorded):
    sim, upstream = recorded()
    contract = contract_for(sim.base_url)
    server = gateway(contract, env_for(sim.api_key), max_body_bytes=4096, keys=("gk-one",))
    return server, upstream


def _own(headers: dict[str, str], code: str) -> None:
    assert headers["x-chatcontract-attempts"] == "0"
    assert headers["x-chatcontract-route"] == "none"
    assert headers["x-chatcontract-classification"] == f"gateway/{code}"


OWN_ERRORS = [
    pytest.param("POST", CHAT, b"{not json", {}, "invalid_json", id="bad-json"),
    pytest.param("POST", CHAT, b'{"messages": "hi"}', {}, "invalid_request", id="bad-field"),
    pytest.param(
        "POST", CHAT, _body(model="gpt-unknown"), {}, "model_not_found", id="unknown-model"
    ),
    pytest.param(
        "POST", CHAT, _body(fallbacks=["gpt-5-pro"]), {}, "fallback_not_allowed",
        id="unknown-fallback",
    ),
    pytest.param(
        "POST", CHAT, _body(), {"x-chatcontract-deadline-ms": "soon"}, "invalid_deadline",
        id="bad-deadline",
    ),
    pytest.param(
        "POST", CHAT, _body(padding="x" * 5000), {}, "request_too_large", id="body-too-large"
    ),
    pytest.param(
        "POST", CHAT, json.dumps({"messages": [{"role": "user"}]}).encode(), {},
        "invalid_request", id="contract-rejects-it",
    ),
    pytest.param("POST", "/v1/embeddings", b"{}", {}, "unknown_path", id="unknown-path"),
    pytest.param("GET", CHAT, None, {}, "method_not_allowed", id="wrong-method"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "headers", "code"), OWN_ERRORS)
def test_an_own_error_says_nothing_was_sent_and_names_its_code(
    served, method, path, body, headers, code
):
    server, upstream = served
    status, found, data = raw_request(
        server.root_url, method, path, body, {**JSON, **KEY, **headers}
    )
    assert status >= 400
    assert error_of(data)["code"] == code
    _own(found, code)
    assert upstream.chat_requests() == []


@pytest.mark.parametrize(
    "headers",
    [pytest.param({}, id="no-key"), pytest.param({"authorization": "Bearer gk-x"}, id="wrong")],
)
def test_a_refused_gateway_key_says_nothing_was_sent(served, headers):
    server, upstream = served
    status, found, _ = raw_request(server.root_url, "POST", CHAT, _body(), {**JSON, **headers})
    assert status == 401
    assert found["www-authenticate"] == "Bearer"
    _own(found, "invalid_gateway_key")
    assert upstream.chat_requests() == []


def test_a_chunked_body_over_the_limit_says_nothing_was_sent(served):
    server, upstream = served
    connection = http.client.HTTPConnection(server.root_url.removeprefix("http://"), timeout=20)
    try:
        pieces = iter([b'{"messages": [], "p": "', b"x" * 3000, b"y" * 3000, b'"}'])
        connection.request("POST", CHAT, body=pieces, headers={**JSON, **KEY}, encode_chunked=True)
        response = connection.getresponse()
        response.read()
        found = {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()
    assert response.status == 413
    _own(found, "request_too_large")
    assert upstream.chat_requests() == []


def test_a_bug_before_the_answer_started_says_nothing_was_answered(served, monkeypatch):
    server, _ = served

    async def broken(call):
        raise RuntimeError("bug")

    monkeypatch.setattr(server.app.state.upstream, "complete_body", broken)
    status, found, _ = raw_request(server.root_url, "POST", CHAT, _body(), {**JSON, **KEY})
    assert status == 500
    _own(found, "internal_error")


def test_the_model_list_is_the_gateways_own_answer(served):
    server, upstream = served
    status, found, _ = raw_request(server.root_url, "GET", "/v1/models", None, KEY)
    assert status == 200
    assert (
        found["x-chatcontract-attempts"],
        found["x-chatcontract-route"],
        found["x-chatcontract-classification"],
    ) == ("0", "none", "success")
    assert upstream.chat_requests() == []


def test_a_proxied_call_still_names_its_attempts_and_route(served):
    server, _ = served
    status, found, _ = raw_request(server.root_url, "POST", CHAT, _body(), {**JSON, **KEY})
    assert status == 200
    assert (found["x-chatcontract-attempts"], found["x-chatcontract-route"]) == ("1", "primary")
    assert found["x-chatcontract-classification"] == "success"


def test_a_budget_refusal_is_the_calls_failure_with_no_attempt(gateway, recorded):
    sim, upstream = recorded()
    contract = contract_for(sim.base_url)
    caps = replace(contract.policy.caps, max_tokens_per_call=10)
    contract = replace(contract, policy=replace(contract.policy, caps=caps))
    server = gateway(contract, env_for(sim.api_key))
    status, found, data = raw_request(server.root_url, "POST", CHAT, _body(max_tokens=100), JSON)
    assert (status, error_of(data)["code"]) == (429, "max_tokens_cap")
    assert (found["x-chatcontract-attempts"], found["x-chatcontract-route"]) == ("0", "primary")
    assert found["x-chatcontract-classification"] == "budget/budget/max_tokens_cap"
    assert upstream.chat_requests() == []
