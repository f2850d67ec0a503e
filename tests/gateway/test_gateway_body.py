"""The body that goes upstream: the client's own bytes when the gateway changes nothing in
it, else the call's body encoded again (the gateway's fields out, the route's model in)."""

from __future__ import annotations

import json

import pytest
from gateway_helpers import BACKUP_MODEL, PROMPT, contract_for, env_for, raw_request

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}
MODEL = "gpt-4.1-nano"  # the cometapi preset's model: the primary route's
USAGE = {"include_usage": True}


@pytest.fixture
def served(gateway, recorded):
    sim, upstream = recorded()
    backup, backup_upstream = recorded()
    contract = contract_for(sim.base_url, backup_url=backup.base_url)
    server = gateway(contract, env_for(sim.api_key, backup.api_key))
    return server, upstream, backup_upstream


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            '{ "model" : "gpt-4.1-nano",\n  "messages": [{"role": "user", "content": "hi é"}],'
            ' "temperature": 0.5 }'.encode(),
            id="non-streamed-spacing-and-utf8-kept",
        ),
        pytest.param(
            json.dumps(
                {"stream_options": USAGE, "messages": PROMPT, "stream": True, "model": MODEL}
            ).encode(),
            id="streamed-asking-usage-key-order-kept",
        ),
    ],
)
def test_a_body_the_gateway_changes_nothing_in_goes_upstream_as_it_came(served, body):
    server, upstream, _ = served
    status, _, _ = raw_request(server.root_url, "POST", CHAT, body, JSON)
    assert status == 200
    [(_, sent)] = upstream.chat_requests()
    assert sent == body


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"model": "primary", "messages": PROMPT},
            {"model": MODEL, "messages": PROMPT},
            id="route-name-becomes-the-model",
        ),
        pytest.param(
            {"model": MODEL, "messages": PROMPT, "fallbacks": []},
            {"model": MODEL, "messages": PROMPT},
            id="fallbacks-dropped",
        ),
        pytest.param(
            {"messages": PROMPT, "stream": False},
            {"model": MODEL, "messages": PROMPT},
            id="model-added-stream-false-dropped",
        ),
        pytest.param(
            {"model": MODEL, "messages": PROMPT, "stream": True},
            {"model": MODEL, "messages": PROMPT, "stream_options": USAGE, "stream": True},
            id="stream-asks-for-usage",
        ),
    ],
)
def test_a_body_the_gateway_changes_is_encoded_again(served, fields, expected):
    server, upstream, _ = served
    status, _, _ = raw_request(server.root_url, "POST", CHAT, json.dumps(fields).encode(), JSON)
    assert status == 200
    [(_, sent)] = upstream.chat_requests()
    assert json.loads(sent) == expected
    assert b" " not in sent.split(b'"messages"')[0]  # encoded compact, not the client's text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b'{"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi \\u00e9"}]}',
            id="an-escape-in-a-value",
        ),
        pytest.param(
            b'{"mod\\u0065l": "gpt-4o-mini", "model": "gpt-4.1-nano", "messages": '
            b'[{"role": "user", "content": "hi \xc3\xa9"}]}',
            id="model-repeated-through-an-escape",
        ),
    ],
)
def test_a_body_with_an_escape_goes_upstream_as_the_gateway_read_it(served, body):
    # An escape may spell a key the gateway decides on a second time, which an upstream keeping
    # the first of two repeated keys would read apart from the gateway: encoded again, the body
    # has each key once, with the value the gateway routed on.
    server, upstream, _ = served
    status, _, _ = raw_request(server.root_url, "POST", CHAT, body, JSON)
    assert status == 200
    [(_, sent)] = upstream.chat_requests()
    assert sent.count(b'"model"') == 1
    assert b"\\u" not in sent
    assert json.loads(sent) == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi \u00e9"}],
    }


def test_a_fallback_to_another_model_gets_its_own_body(gateway, recorded):
    down, down_upstream = recorded("upstream_unavailable")
    backup, backup_upstream = recorded()
    contract = contract_for(down.base_url, backup_url=backup.base_url)
    server = gateway(contract, env_for(down.api_key, backup.api_key))
    body = json.dumps({"model": MODEL, "messages": PROMPT}).encode()
    status, headers, _ = raw_request(server.root_url, "POST", CHAT, body, JSON)
    assert status == 200
    assert headers["x-chatcontract-route"] == "backup"
    assert all(sent == body for _, sent in down_upstream.chat_requests())
    [(_, sent)] = backup_upstream.chat_requests()
    assert json.loads(sent) == {"model": BACKUP_MODEL, "messages": PROMPT}
