"""An upstream (or a relay before it) that answers a streamed request with an SSE stream
labelled as something else (``application/json``, or no ``Content-Type``) is passed on to the
gateway's client as the stream it is, ``text/event-stream``, on either upstream wire; the
client gets every chunk, as the openai SDK reads the same stream upstream. (A provider that
ignores ``stream`` and answers one JSON completion: ``test_gateway_sdk``.)"""

from __future__ import annotations

import openai
import pytest
from gateway_helpers import PROMPT, UNHURRIED, contract_for, env_for

from chatcontract.gateway import GatewayServer, GatewayState, _wire, create_app
from raw_servers import COMPLETION, STREAM_EVENTS, STREAM_TEXT, labelled, raw_server


@pytest.mark.parametrize("label", ["application/json", None], ids=["json", "none"])
@pytest.mark.parametrize("aiohttp", [True, False], ids=["aiohttp-wire", "httpx2-wire"])
def test_a_mislabelled_upstream_stream_reaches_the_client_as_a_stream(aiohttp, label, monkeypatch):
    if not aiohttp:
        monkeypatch.setattr(_wire, "has_aiohttp", lambda: False)
    with raw_server(labelled(label, STREAM_EVENTS)) as upstream:
        contract = contract_for(upstream.base_url, timeouts=UNHURRIED)
        state = GatewayState(contract, environ=env_for("sk-primary"))
        with GatewayServer(create_app(state)) as served:
            model = state.routes[0].model
            with openai.OpenAI(base_url=served.base_url, api_key="unused", max_retries=0) as sdk:
                raw = sdk.chat.completions.with_raw_response.create(
                    model=model, messages=PROMPT, stream=True
                )
                chunks = list(raw.parse())
            plain = openai.OpenAI(base_url=upstream.base_url, api_key="unused", max_retries=0)
            with plain:  # what the SDK reads of the same upstream, without the gateway
                direct = list(
                    plain.chat.completions.create(model=model, messages=PROMPT, stream=True)
                )
    assert raw.headers["content-type"].startswith("text/event-stream")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == STREAM_TEXT
    assert text == "".join(c.choices[0].delta.content or "" for c in direct if c.choices)
    assert len([c for c in chunks if c.choices]) > 2  # passed on as chunks, not one answer
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert upstream.requests == 2


@pytest.mark.parametrize("aiohttp", [True, False], ids=["aiohttp-wire", "httpx2-wire"])
def test_an_upstream_ignoring_stream_is_still_one_answer_in_chunks(aiohttp, monkeypatch):
    if not aiohttp:
        monkeypatch.setattr(_wire, "has_aiohttp", lambda: False)
    with raw_server(labelled("application/json", [COMPLETION])) as upstream:
        contract = contract_for(upstream.base_url, timeouts=UNHURRIED)
        state = GatewayState(contract, environ=env_for("sk-primary"))
        with GatewayServer(create_app(state)) as served:
            model = state.routes[0].model
            with openai.OpenAI(base_url=served.base_url, api_key="unused", max_retries=0) as sdk:
                chunks = list(
                    sdk.chat.completions.create(model=model, messages=PROMPT, stream=True)
                )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "pong"
    assert chunks[-1].choices[0].finish_reason == "stop"
