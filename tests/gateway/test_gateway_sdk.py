"""The official openai SDK (sync, async, streaming) through the gateway to a simulator: the
answer, the model that answered, usage as asked, and the x-chatcontract-* headers."""

from __future__ import annotations

import json
import threading

import anyio
import openai
import pytest
from gateway_helpers import (
    BACKUP_MODEL,
    FULL,
    PROMPT,
    UNHURRIED,
    ScriptedStream,
    contract_for,
    env_for,
    eventually,
    raw_request,
    request_read,
)

from chatcontract.gateway import GatewayServer


def _gateway(gateway, sims, **contract_changes) -> tuple[GatewayServer, str]:
    primary = sims()
    contract = contract_for(primary.base_url, backup_url=sims().base_url, **contract_changes)
    server = gateway(contract, env_for(primary.api_key, primary.api_key))
    return server, server.app.state.routes[0].model


def _sync(server: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=20)


def _async(server: GatewayServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=20)


def test_sync_sdk_gets_the_full_answer_and_the_call_headers(gateway, sims):
    server, model = _gateway(gateway, sims)
    with _sync(server) as client:
        raw = client.chat.completions.with_raw_response.create(model=model, messages=PROMPT)
    completion = raw.parse()
    assert completion.choices[0].message.content == FULL
    assert completion.model.startswith(model)  # the model that answered, as the provider says
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-chatcontract-attempts"] == "1"
    assert raw.headers["x-chatcontract-route"] == "primary"
    assert raw.headers["x-chatcontract-classification"] == "success"
    state = server.app.state
    assert eventually(lambda: (state.served, state.in_flight) == (1, 0))


@pytest.mark.anyio
async def test_async_sdk_gets_the_full_answer(gateway, sims):
    server, model = _gateway(gateway, sims)
    async with _async(server) as client:
        completion = await client.chat.completions.create(model=model, messages=PROMPT)
    assert completion.choices[0].message.content == FULL


def test_sync_sdk_stream_passes_through_without_usage_it_did_not_ask_for(gateway, sims):
    server, model = _gateway(gateway, sims)
    with _sync(server) as client:
        chunks = list(client.chat.completions.create(model=model, messages=PROMPT, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == FULL
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({chunk.id for chunk in chunks}) == 1


@pytest.mark.anyio
async def test_async_sdk_stream_gets_usage_when_it_asks(gateway, sims):
    server, model = _gateway(gateway, sims)
    async with _async(server) as client:
        stream = await client.chat.completions.create(
            model=model, messages=PROMPT, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == FULL
    usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0


def test_a_model_of_a_fallback_route_is_served_by_that_route(gateway, sims):
    server, _ = _gateway(gateway, sims)
    with _sync(server) as client:
        raw = client.chat.completions.with_raw_response.create(model=BACKUP_MODEL, messages=PROMPT)
    assert raw.headers["x-chatcontract-route"] == "backup"
    assert raw.parse().model.startswith(BACKUP_MODEL)


def test_models_lists_the_models_the_routes_declare(gateway, sims):
    server, model = _gateway(gateway, sims)
    with _sync(server) as client:
        listed = [entry.id for entry in client.models.list()]
    assert listed == [model, BACKUP_MODEL]


class IgnoresStream:
    """An upstream that answers every request with one JSON completion, streamed or not."""

    async def __call__(self, scope, receive, send) -> None:
        if not await request_read(scope, receive, send):
            return
        body = json.dumps(
            {
                "id": "chatcmpl-json",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt-4.1-nano",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": FULL},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
            }
        ).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("usage", [False, True], ids=["usage-not-asked", "usage-asked"])
def test_a_provider_ignoring_stream_still_gives_the_client_a_stream(gateway, usage):
    with GatewayServer(IgnoresStream()) as upstream:  # type: ignore[arg-type]
        server = gateway(
            contract_for(upstream.base_url, timeouts=UNHURRIED), env_for("sk-upstream")
        )
        options = {"stream_options": {"include_usage": True}} if usage else {}
        with _sync(server) as client:
            chunks = list(
                client.chat.completions.create(
                    model="gpt-4.1-nano", messages=PROMPT, stream=True, **options
                )
            )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == FULL
    assert [c.usage.total_tokens for c in chunks if c.usage] == ([12] if usage else [])


def _sse_chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    doc = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4.1-nano",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


Scripted = ScriptedStream


def test_upstream_keep_alives_after_the_first_text_reach_the_client(gateway):
    pieces = [
        b": PING\n\n",  # before any text: nothing is sent yet, nothing to keep alive
        _sse_chunk("Hello"),
        b": PING\n\n",
        _sse_chunk(" world"),
        _sse_chunk(None, "stop"),
        b"data: [DONE]\n\n",
    ]
    with GatewayServer(Scripted(pieces)) as upstream:  # type: ignore[arg-type]
        server = gateway(contract_for(upstream.base_url), env_for("sk-upstream"))
        body = json.dumps({"messages": PROMPT, "stream": True}).encode()
        status, _, data = raw_request(
            server.root_url,
            "POST",
            "/v1/chat/completions",
            body,
            {"content-type": "application/json"},
        )
    events = [e for e in data.decode().split("\n\n") if e]
    assert status == 200
    # One keep-alive: the ping after the first text (the one before it had nothing to keep
    # alive). Where it sits depends on how the upstream's writes were read together.
    assert events.count(": keep-alive") == 1
    data_events = [e for e in events if e.startswith("data: ")]
    assert len(data_events) == 4 and data_events[-1] == "data: [DONE]"


class Gated(Scripted):
    """Streams its first pieces, then waits (bounded) for ``gate`` before the rest."""

    def __init__(self, first: list[bytes], rest: list[bytes]) -> None:
        super().__init__(first, gap_s=0.0)
        self.rest = rest
        self.gate = threading.Event()
        self.released = False  # by the gate (not by the bounded wait running out)

    async def more(self, send) -> None:
        with anyio.move_on_after(10) as waited:
            while not self.gate.is_set():
                await anyio.sleep(0.01)
        self.released = not waited.cancelled_caught
        for piece in self.rest:
            await send({"type": "http.response.body", "body": piece, "more_body": True})


def test_the_first_token_reaches_the_client_before_the_upstream_sends_more(gateway):
    upstream_app = Gated(
        [_sse_chunk(""), _sse_chunk("Hello")],
        [_sse_chunk(" world"), _sse_chunk(None, "stop"), b"data: [DONE]\n\n"],
    )
    with GatewayServer(upstream_app) as upstream:  # type: ignore[arg-type]
        server = gateway(
            contract_for(upstream.base_url, timeouts=UNHURRIED), env_for("sk-upstream")
        )
        with _sync(server) as client:
            stream = client.chat.completions.create(
                model="gpt-4.1-nano", messages=PROMPT, stream=True
            )
            seen = ""
            for chunk in stream:  # the upstream holds the rest until the client saw "Hello"
                seen += chunk.choices[0].delta.content or ""
                if seen == "Hello":
                    upstream_app.gate.set()
    assert upstream_app.released  # the client had "Hello" while the upstream held the rest
    assert seen == "Hello world"


@pytest.mark.anyio
async def test_concurrent_streams_each_get_their_own_full_answer(gateway, sims):
    server, model = _gateway(gateway, sims)
    prompts = [[{"role": "user", "content": f"Question number {n}"}] for n in range(8)]

    async def one(client: openai.AsyncOpenAI, messages) -> str:
        stream = await client.chat.completions.create(model=model, messages=messages, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async with _async(server) as client:
        async with anyio.create_task_group() as group:
            texts: dict[int, str] = {}

            async def run(n: int) -> None:
                texts[n] = await one(client, prompts[n])

            for n in range(len(prompts)):
                group.start_soon(run, n)
        expected = {
            n: (await client.chat.completions.create(model=model, messages=p))
            .choices[0]
            .message.content
            for n, p in enumerate(prompts)
        }
    assert texts == expected
    assert len(set(texts.values())) > 1  # different questions, different answers
    assert eventually(lambda: server.app.state.in_flight == 0)
