"""The gateway's upstream calls ask for ``Accept-Encoding: identity`` (they are
``AsyncChatClient`` calls); an upstream that compresses anyway still has its stream passed on
as decoded payloads (the stream parser's tap is fed decoded bytes) and its body as JSON, on
either upstream wire (aiohttp's, which never decompresses, and httpx2's)."""

from __future__ import annotations

import openai
import pytest
from gateway_helpers import PROMPT, contract_for, env_for

from chatcontract.gateway import GatewayServer, GatewayState, _wire, create_app
from raw_servers import STREAM_TEXT, gzips_anyway, raw_server


@pytest.mark.parametrize("aiohttp", [True, False], ids=["aiohttp-wire", "httpx2-wire"])
def test_a_compressed_upstream_is_passed_on_decoded(aiohttp, monkeypatch):
    if not aiohttp:
        monkeypatch.setattr(_wire, "has_aiohttp", lambda: False)
    with raw_server(gzips_anyway()) as upstream:
        state = GatewayState(contract_for(upstream.base_url), environ=env_for("sk-primary"))
        with GatewayServer(create_app(state)) as served:
            model = state.routes[0].model
            with openai.OpenAI(base_url=served.base_url, api_key="unused", max_retries=0) as sdk:
                completion = sdk.chat.completions.create(model=model, messages=PROMPT)
                streamed = "".join(
                    chunk.choices[0].delta.content or ""
                    for chunk in sdk.chat.completions.create(
                        model=model, messages=PROMPT, stream=True
                    )
                    if chunk.choices
                )
    assert completion.choices[0].message.content == "pong"
    assert streamed == STREAM_TEXT
    assert upstream.state["encodings"] == ["identity", "identity"]
