"""``instrument()`` / ``ainstrument()`` with the openai SDK, against a server that sends a
streamed answer labelled as something else than ``text/event-stream``: the SDK reads such a
stream fine (it goes by ``stream=True``, not by the label), so the Exchange says what the
caller got, a complete stream, with the label as a tolerated contract violation
(``http/contract/stream_content_type``), not ``parser/contract/invalid_json`` or a stream the
caller closed unjudged. A JSON answer to a streamed request is still judged as a body."""

from __future__ import annotations

import openai
import pytest

from chatcontract.instrumentation import ainstrument, instrument
from raw_servers import COMPLETION, STREAM_EVENTS, STREAM_TEXT, labelled, raw_server

MESSAGES = [{"role": "user", "content": "hi"}]


def _text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _check_streamed(exchanges, label) -> None:
    assert len(exchanges) == 1
    exchange = exchanges[0]
    failure, response = exchange.failure, exchange.response
    assert (failure.kind, failure.category, failure.code) == (
        "http",
        "contract",
        "stream_content_type",
    )
    assert response.stream_verdict == "complete"
    assert response.content_type == label
    assert response.finish_reason == "stop" and response.model == "gpt-4.1-nano"
    assert response.usage.total_tokens == 52
    assert response.chunk_count == len(STREAM_EVENTS) - 1  # every chunk but [DONE]
    assert not exchange.closed_by_caller


@pytest.mark.parametrize("label", ["application/json", "text/plain", None])
@pytest.mark.parametrize("done", [True, False], ids=["with-done", "without-done"])
def test_a_mislabelled_stream_the_sdk_reads_is_recorded_as_the_stream_it_is(label, done):
    events = STREAM_EVENTS if done else STREAM_EVENTS[:-1]
    exchanges = []
    with (
        raw_server(labelled(label, events)) as server,
        openai.OpenAI(
            base_url=server.base_url,
            api_key="sk-test",
            max_retries=0,
            http_client=instrument(sinks=[exchanges.append], event_log=False),
        ) as sdk,
    ):
        chunks = list(
            sdk.chat.completions.create(model="gpt-4.1-nano", messages=MESSAGES, stream=True)
        )
    assert _text(chunks) == STREAM_TEXT
    if done:
        _check_streamed(exchanges, label)
    else:  # without [DONE] the stream's own (tolerated) violation is the one named
        assert [e.failure.code for e in exchanges] == ["stream_no_done"]
        assert exchanges[0].response.stream_verdict == "no_done"


@pytest.mark.anyio
async def test_ainstrument_records_a_mislabelled_stream_as_the_stream_it_is():
    exchanges = []
    with raw_server(labelled("application/json", STREAM_EVENTS)) as server:
        async with openai.AsyncOpenAI(
            base_url=server.base_url,
            api_key="sk-test",
            max_retries=0,
            http_client=ainstrument(sinks=[exchanges.append], event_log=False),
        ) as sdk:
            stream = await sdk.chat.completions.create(
                model="gpt-4.1-nano", messages=MESSAGES, stream=True
            )
            chunks = [chunk async for chunk in stream]
    assert _text(chunks) == STREAM_TEXT
    _check_streamed(exchanges, "application/json")


def test_a_json_answer_to_a_streamed_request_is_still_judged_as_a_body():
    exchanges = []
    with (
        raw_server(labelled("application/json", [COMPLETION])) as server,
        openai.OpenAI(
            base_url=server.base_url,
            api_key="sk-test",
            max_retries=0,
            http_client=instrument(sinks=[exchanges.append], event_log=False),
        ) as sdk,
    ):
        list(sdk.chat.completions.create(model="gpt-4.1-nano", messages=MESSAGES, stream=True))
    (exchange,) = exchanges
    assert exchange.failure is None
    assert exchange.response.stream_verdict is None  # a body, not a stream
    assert exchange.response.model == "gpt-4.1-nano" and exchange.response.content_chars == 4
