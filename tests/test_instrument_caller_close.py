"""A caller that stops a call before its answer ended (breaks out of a stream, closes a
response unread, has its task cancelled) is observed and metered as the caller's doing: one
Exchange, ``closed_by_caller``, no failure of the provider, no incomplete-stream, error or
schema counts (what the alerts read), nothing lost and nothing counted twice."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from chatcontract.instrumentation import ainstrument, instrument
from chatcontract.simulator import DELAY_HEADER, SCENARIO_HEADER
from raw_servers import raw_server, read_request

MODEL = "gpt-4.1-nano"
MESSAGES = [{"role": "user", "content": "Tell me a long story"}]
LABELS = {"provider": "cometapi", "endpoint": "/chat/completions", "model": MODEL,
          "route": "primary"}  # fmt: skip
#: The families a caller's own close must leave alone: what the stream, error and schema
#: alerts (and the latency alert) read.
PROVIDER_FAULT_FAMILIES = (
    "llm_stream_incomplete_total",
    "llm_error_total",
    "llm_response_schema_invalid_total",
    "llm_response_schema_valid_total",
    "llm_response_missing_usage_total",
    "llm_client_timeout_total",
    "llm_latency_ms_count",
)


def _counted(registry: CollectorRegistry) -> dict[str, float]:
    """Every sample of the scrape that counted something, by name and labels."""
    found = {}
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("#") or "_created" in line or "_bucket" in line:
            continue
        name, value = line.rsplit(" ", 1)
        if float(value):
            found[name] = float(value)
    return found


def _assert_counted_as_the_callers(registry: CollectorRegistry, *, stream: bool) -> None:
    counted = _counted(registry)
    wrong = [name for name in counted if name.startswith(PROVIDER_FAULT_FAMILIES)]
    assert wrong == []
    labels = {**LABELS, "stream": "true" if stream else "false"}
    assert registry.get_sample_value("llm_request_total", labels) == 1
    assert registry.get_sample_value("llm_time_to_first_byte_ms_count", labels) == 1


def _sync_sdk(server, registry, exchanges):
    http = instrument(registry=registry, sinks=[exchanges.append], event_log=False)
    return openai.OpenAI(
        base_url=server.base_url, api_key=server.api_key, http_client=http, max_retries=0
    )


def _async_sdk(server, registry, exchanges):
    http = ainstrument(registry=registry, sinks=[exchanges.append], event_log=False)
    return openai.AsyncOpenAI(
        base_url=server.base_url, api_key=server.api_key, http_client=http, max_retries=0
    )


@pytest.mark.parametrize("include_usage", [False, True])
def test_breaking_out_of_an_sdk_stream_is_the_callers_close_not_a_cut_stream(
    openai_simulator, include_usage
):
    registry, exchanges = CollectorRegistry(), []
    with _sync_sdk(openai_simulator, registry, exchanges) as sdk:
        options = {"stream_options": {"include_usage": True}} if include_usage else {}
        with sdk.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=200, stream=True, **options
        ) as stream:
            for index, _ in enumerate(stream):
                if index == 2:
                    break
    [exchange] = exchanges
    assert exchange.failure is None
    assert exchange.closed_by_caller
    assert not exchange.ok
    assert exchange.response.stream_verdict == "closed"
    assert exchange.response.chunk_count >= 3
    assert exchange.timings.ttft_ms is not None
    _assert_counted_as_the_callers(registry, stream=True)
    labels = {**LABELS, "stream": "true"}
    assert registry.get_sample_value("llm_time_to_first_token_ms_count", labels) == 1


def test_a_stream_the_server_drops_is_still_a_dropped_stream(openai_simulator):
    registry, exchanges = CollectorRegistry(), []
    with _sync_sdk(openai_simulator, registry, exchanges) as sdk:
        stream = sdk.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True,
            extra_headers={SCENARIO_HEADER: "cut_stream"},
        )  # fmt: skip
        # The simulator closes the connection inside the chunked body: the SDK says so.
        with stream, pytest.raises(openai.APIConnectionError):
            for _ in stream:
                pass
    [exchange] = exchanges
    assert not exchange.closed_by_caller
    assert exchange.failure.code == "stream_dropped"
    labels = {**LABELS, "stream": "true", "verdict": "dropped"}
    assert registry.get_sample_value("llm_stream_incomplete_total", labels) == 1


def test_a_response_closed_unread_is_the_callers_close_not_an_empty_body(openai_simulator):
    registry, exchanges = CollectorRegistry(), []
    sdk = _sync_sdk(openai_simulator, registry, exchanges)
    unread = sdk.chat.completions.with_streaming_response.create
    with sdk, unread(model=MODEL, messages=MESSAGES, max_tokens=5) as response:
        assert response.status_code == 200
    [exchange] = exchanges
    assert exchange.failure is None
    assert exchange.closed_by_caller
    assert exchange.response.status == 200
    _assert_counted_as_the_callers(registry, stream=False)


def test_an_async_task_cancelled_mid_stream_is_recorded_once_as_the_callers(openai_simulator):
    registry, exchanges = CollectorRegistry(), []

    async def run():
        sdk = _async_sdk(openai_simulator, registry, exchanges)
        first_token = asyncio.Event()

        async def read():
            stream = await sdk.chat.completions.create(
                model=MODEL, messages=MESSAGES, max_tokens=200, stream=True,
                extra_headers={SCENARIO_HEADER: "slow", DELAY_HEADER: "5000"},
            )  # fmt: skip
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    first_token.set()

        task = asyncio.create_task(read())
        await first_token.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await sdk.close()

    asyncio.run(run())
    [exchange] = exchanges
    assert exchange.failure is None
    assert exchange.closed_by_caller
    assert exchange.response.stream_verdict == "closed"
    assert exchange.timings.ttft_ms is not None
    _assert_counted_as_the_callers(registry, stream=True)


def test_an_async_call_cancelled_before_its_answer_is_not_lost(openai_simulator):
    registry, exchanges = CollectorRegistry(), []

    async def run():
        sdk = _async_sdk(openai_simulator, registry, exchanges)
        call = sdk.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=5,
            extra_headers={SCENARIO_HEADER: "no_response", DELAY_HEADER: "10000"},
        )  # fmt: skip
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call, 0.3)
        await sdk.close()

    asyncio.run(run())
    [exchange] = exchanges
    assert exchange.failure is None
    assert exchange.closed_by_caller
    assert exchange.response is None
    counted = _counted(registry)
    assert [name for name in counted if name.startswith(PROVIDER_FAULT_FAMILIES)] == []
    assert registry.get_sample_value("llm_request_total", {**LABELS, "stream": "false"}) == 1


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_streamed_calls_error_the_sdk_retries_unread_is_named_by_its_body(
    openai_simulator, is_async
):
    # OpenAI's quota error is a 429 whose body says insufficient_quota: billing, not capacity.
    # The SDK retries a streamed call's 429 after closing it unread, and reads only the last.
    registry, exchanges = CollectorRegistry(), []
    create = {"model": MODEL, "messages": MESSAGES, "stream": True,
              "extra_headers": {SCENARIO_HEADER: "quota_exhausted"}}  # fmt: skip
    if is_async:

        async def run():
            sdk = _async_sdk(openai_simulator, registry, exchanges).with_options(max_retries=1)
            with pytest.raises(openai.RateLimitError):
                await sdk.chat.completions.create(**create)
            await sdk.close()

        asyncio.run(run())
    else:
        sdk = _sync_sdk(openai_simulator, registry, exchanges).with_options(max_retries=1)
        with sdk, pytest.raises(openai.RateLimitError):
            sdk.chat.completions.create(**create)
    named = [(e.attempt, e.failure.kind, e.failure.category, e.failure.code) for e in exchanges]
    assert named == [(attempt, "api_error", "quota", "insufficient_quota") for attempt in (1, 2)]
    labels = {**LABELS, "stream": "true", "kind": "api_error", "category": "quota",
              "status_code": "429"}  # fmt: skip
    assert registry.get_sample_value("llm_error_total", labels) == 2


def _head_without_its_body():
    async def handler(reader, writer, server):
        if await read_request(reader, server) is None:
            return
        writer.write(b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
                     b"content-length: 100\r\n\r\n")  # fmt: skip
        await writer.drain()
        await asyncio.sleep(10)  # the body never comes

    return handler


def test_an_error_answer_closed_unread_is_not_waited_for_beyond_a_moment():
    exchanges = []
    with raw_server(_head_without_its_body()) as server:
        client = instrument(sinks=[exchanges.append], event_log=False, timeout=10.0)
        with client:
            started = time.perf_counter()
            with client.stream("POST", server.url, json={"model": MODEL, "messages": MESSAGES}):
                pass
            closed_in = time.perf_counter() - started
    assert closed_in < 2.0  # not the 10 s read timeout
    [exchange] = exchanges
    assert (exchange.failure.category, exchange.response.status) == ("rate_limit", 429)
