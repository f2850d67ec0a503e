"""The gateway runs on the measured stack when the ``gateway`` extra is installed: upstream
calls through the aiohttp transport (one for every route), served by uvicorn with httptools on
uvloop; without it, httpx2's transport per route, h11 and asyncio. ``ChatClient`` keeps
httpx2's transport either way."""

from __future__ import annotations

import importlib.util
import json
import time
from typing import Any

import httpx2
import openai
import pytest
from gateway_helpers import FULL, PROMPT, contract_for, env_for, error_of, raw_request
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chatcontract.client import AsyncChatClient, ChatClient
from chatcontract.contract import Timeouts
from chatcontract.gateway import GatewayState, _wire, create_app, server
from chatcontract.transport._aiohttp import AiohttpTransport
from raw_servers import dripping_head, raw_server

UPSTREAM = "http://127.0.0.1:9/v1"  # never called: these tests only look at the wiring


def _wire_of(client: Any) -> Any:
    """The transport doing the I/O under a route's client (instrumented → guard → wire)."""
    return client._transport._inner._inner


def _state(**options: Any) -> GatewayState:
    contract = contract_for(UPSTREAM, backup_url=UPSTREAM)
    return GatewayState(contract, environ=env_for("sk-primary", "sk-backup"), **options)


def test_the_gateway_sends_upstream_through_one_aiohttp_transport_when_installed():
    state = _state()
    wires = [_wire_of(client) for client in state.upstream._http.values()]
    assert len(wires) == 2
    assert all(isinstance(wire, AiohttpTransport) for wire in wires)
    assert wires[0] is wires[1]  # one session, one pool per host, for every route


def test_without_aiohttp_the_gateway_uses_httpx2s_transport_per_route(monkeypatch):
    monkeypatch.setattr(_wire, "has_aiohttp", lambda: False)
    state = _state()
    wires = [_wire_of(client) for client in state.upstream._http.values()]
    assert all(type(wire) is httpx2.AsyncHTTPTransport for wire in wires)
    assert wires[0] is not wires[1]


def test_a_transport_given_is_used_as_it_is():
    given = httpx2.MockTransport(lambda request: httpx2.Response(500))
    state = _state(transport=given)
    assert all(_wire_of(client) is given for client in state.upstream._http.values())


@pytest.mark.parametrize("cls", [ChatClient, AsyncChatClient], ids=["sync", "async"])
def test_chat_clients_keep_httpx2s_own_transport(cls):
    contract = contract_for(UPSTREAM)
    client = cls(contract, environ=env_for("sk-primary"))
    [route_client] = client._http.values()
    assert type(_wire_of(route_client)) in (httpx2.HTTPTransport, httpx2.AsyncHTTPTransport)


def test_the_server_runs_httptools_on_uvloop_when_installed(monkeypatch):
    state = _state()
    config = server.server_config(create_app(state))
    # httptools, in the protocol that bounds each request head (gateway._guard)
    assert issubclass(config.http, HttpToolsProtocol) and config.loop == "uvloop"
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("httptools", "uvloop") else real(name, *a),
    )
    config = server.server_config(create_app(state))
    # h11, in the protocol that bounds each request's head and body in time (gateway._guard)
    assert issubclass(config.http, H11Protocol) and config.loop == "asyncio"


def test_a_served_call_goes_through_the_aiohttp_session_on_uvloop(gateway, sims):
    primary = sims()
    contract = contract_for(primary.base_url, backup_url=primary.base_url)
    served = gateway(contract, env_for(primary.api_key, primary.api_key))
    [wire] = {id(w): w for w in map(_wire_of, served.app.state.upstream._http.values())}.values()
    assert wire._session is None  # made in the server's loop, on first use
    with openai.OpenAI(base_url=served.base_url, api_key="unused", max_retries=0) as client:
        completion = client.chat.completions.create(
            model=served.app.state.routes[0].model, messages=PROMPT
        )
        streamed = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in client.chat.completions.create(
                model=served.app.state.routes[0].model, messages=PROMPT, stream=True
            )
            if chunk.choices
        )
    assert completion.choices[0].message.content == FULL
    assert streamed == FULL
    assert wire._session is not None and not wire._session.closed
    assert type(served.loop).__module__.startswith("uvloop")
    served.stop()
    assert wire._session is None  # the gateway's shutdown closed it


def test_a_head_dripped_byte_by_byte_upstream_ends_at_the_callers_deadline(gateway):
    """Hostile upstream: each byte of the head arrives well within any read timeout, so only
    the call's deadline, cut into every read by the aiohttp transport, ends the call."""
    with raw_server(dripping_head(0.05, header_bytes=2_000)) as upstream:
        contract = contract_for(upstream.base_url)
        served = gateway(contract, env_for("sk-primary"))
        body = json.dumps({"model": served.app.state.routes[0].model, "messages": PROMPT})
        started = time.monotonic()
        status, found, data = raw_request(
            served.root_url,
            "POST",
            "/v1/chat/completions",
            body.encode(),
            {"content-type": "application/json", "x-chatcontract-deadline-ms": "1000"},
        )
        elapsed = time.monotonic() - started
    assert status == 504, found
    assert error_of(data)["type"] == "timeout_error"
    assert found["x-chatcontract-classification"] == "transport/timeout/deadline"
    assert elapsed < 1.0 + 1.5  # the head alone would take 100 s


def test_a_stream_pausing_within_idle_ms_passes_though_longer_than_the_read_timeout(gateway):
    """LiteLLM relaying a model that pauses mid-answer: the pause is longer than the stream's
    read timeout (the lower of first_byte_ms and first_token_ms, the wait for the head) but
    within idle_ms, the only limit on a gap once content started, so ChatClient reads the
    whole answer. On aiohttp's wire the read timeout still cut it, named for idle_ms."""
    from raw_servers import STREAM_EVENTS, STREAM_TEXT, quiet_between

    limits = Timeouts(
        connect_ms=5_000, first_byte_ms=300, first_token_ms=300, idle_ms=5_000, total_ms=20_000
    )
    with raw_server(quiet_between(STREAM_EVENTS[:3], STREAM_EVENTS[3:], quiet_s=1.0)) as upstream:
        contract = contract_for(upstream.base_url, timeouts=limits)
        served = gateway(contract, env_for("sk-primary"))
        client = openai.OpenAI(base_url=served.base_url, api_key="unused", max_retries=0)
        stream = client.chat.completions.create(
            model=served.app.state.routes[0].model, messages=PROMPT, stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == STREAM_TEXT
