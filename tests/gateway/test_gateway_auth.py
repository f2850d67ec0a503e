"""Gateway keys: required when configured, compared in constant time, never forwarded; the
provider key is injected upstream; a client's Authorization header never goes upstream."""

from __future__ import annotations

import json

import pytest
from gateway_helpers import PROMPT, contract_for, env_for, error_of, raw_request

CHAT = "/v1/chat/completions"
BODY = json.dumps({"messages": PROMPT}).encode()
JSON = {"content-type": "application/json"}


@pytest.fixture
def keyed(gateway, recorded):
    sim, upstream = recorded()
    server = gateway(contract_for(sim.base_url), env_for(sim.api_key), keys=("gk-one", "gk-two"))
    return server, sim, upstream


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"authorization": "Bearer gk-wrong"}, id="wrong-key"),
        pytest.param({"authorization": "gk-one"}, id="no-bearer-scheme"),
        pytest.param({"authorization": "Bearer gk-on"}, id="a-prefix-of-a-key"),
        pytest.param({"x-api-key": "gk-one"}, id="key-in-another-header"),
    ],
)
@pytest.mark.parametrize(("method", "path"), [("POST", CHAT), ("GET", "/v1/models")])
def test_a_missing_or_wrong_gateway_key_gets_401_and_nothing_goes_upstream(
    keyed, headers, method, path
):
    server, _, upstream = keyed
    status, found, body = raw_request(server.root_url, method, path, BODY, {**JSON, **headers})
    assert status == 401
    error = error_of(body)
    assert error["type"] == "authentication_error"
    assert error["code"] == "invalid_gateway_key"
    assert "gk-" not in error["message"]
    assert found["www-authenticate"] == "Bearer"
    assert upstream.chat_requests() == []


@pytest.mark.parametrize("key", ["gk-one", "gk-two"])
def test_each_gateway_key_is_accepted_and_never_forwarded(keyed, key):
    server, sim, upstream = keyed
    headers = {**JSON, "authorization": f"Bearer {key}"}
    status, _, _ = raw_request(server.root_url, "POST", CHAT, BODY, headers)
    assert status == 200
    [(sent, _)] = upstream.chat_requests()
    assert sent["authorization"] == f"Bearer {sim.api_key}"  # the provider key, injected
    assert not any(key in value for value in sent.values())


def test_without_gateway_keys_a_clients_authorization_is_not_forwarded(gateway, recorded):
    sim, upstream = recorded()
    server = gateway(contract_for(sim.base_url), env_for(sim.api_key))
    headers = {**JSON, "authorization": "Bearer client-own-secret", "x-api-key": "other-secret"}
    status, _, _ = raw_request(server.root_url, "POST", CHAT, BODY, headers)
    assert status == 200
    [(sent, _)] = upstream.chat_requests()
    assert sent["authorization"] == f"Bearer {sim.api_key}"
    assert "x-api-key" not in sent
    assert not any("secret" in value for value in sent.values())


def test_key_ok_accepts_each_gateway_key_and_nothing_else():
    from chatcontract.gateway import GatewayState
    from chatcontract.simulator import DEFAULT_API_KEY

    state = GatewayState(
        contract_for("http://127.0.0.1:9/v1"), environ=env_for(DEFAULT_API_KEY), keys=("a", "b")
    )
    assert state.key_ok(b"a") and state.key_ok(b"b")
    assert not state.key_ok(b"ab") and not state.key_ok(b"") and not state.key_ok(None)
