"""The happy path through the app: shapes, usage, truncation, snapshots, ids, headers, models."""

from __future__ import annotations

import re

import orjson
import pytest
from sim_helpers import CHAT, REQUEST_ID, chat_body, sse_events, stream_body

from chatcontract.simulator import COMETAPI

pytestmark = pytest.mark.anyio

E1_KEYS = [
    "id",
    "object",
    "created",
    "model",
    "choices",
    "usage",
    "service_tier",
    "system_fingerprint",
]


async def test_non_streaming_answer_has_the_shape_of_the_documented_example(sim):
    async with sim() as client:
        response = await client.post(CHAT, json=chat_body())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == E1_KEYS
    assert body["object"] == "chat.completion"
    assert re.fullmatch(r"chatcmpl-[0-9A-Za-z]{29}", body["id"])
    assert isinstance(body["created"], int)
    assert body["model"] == "gpt-4o-mini-2024-07-18"
    assert body["service_tier"] == "default"
    assert re.fullmatch(r"fp_[0-9a-f]{10}", body["system_fingerprint"])
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "pong", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert body["usage"]["completion_tokens_details"] == {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }


async def test_usage_adds_up_and_counts_the_whole_prompt(sim):
    short = [{"role": "user", "content": "Reply with exactly: pong"}]
    longer = [{"role": "system", "content": "You are a careful assistant."}, *short]
    async with sim() as client:
        a = (await client.post(CHAT, json=chat_body(messages=short))).json()["usage"]
        b = (await client.post(CHAT, json=chat_body(messages=longer))).json()["usage"]
    for usage in (a, b):
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert a["completion_tokens"] == 1
    assert b["prompt_tokens"] > a["prompt_tokens"]


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_max_tokens_truncates_with_finish_reason_length(sim, field):
    messages = [{"role": "user", "content": "Explain the gateway in a sentence."}]
    async with sim() as client:
        body = (await client.post(CHAT, json=chat_body(messages=messages, **{field: 3}))).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    assert len(re.findall(r"\w+|[^\w\s]", body["choices"][0]["message"]["content"])) == 3


@pytest.mark.parametrize(
    ("model", "snapshot"),
    [
        ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"),
        ("gpt-5-mini", "gpt-5-mini-2025-08-07"),
        ("deepseek-chat", "deepseek-chat"),
    ],
    ids=["4.1-nano", "5-mini", "echoed"],
)
async def test_responses_name_the_dated_snapshot(sim, model, snapshot):
    async with sim() as client:
        body = (await client.post(CHAT, json=chat_body(model=model))).json()
    assert body["model"] == snapshot


async def test_answers_are_deterministic_across_apps(sim):
    messages = [{"role": "user", "content": "Say something about contracts."}]
    async with sim() as one, sim() as two:
        a = (await one.post(CHAT, json=chat_body(messages=messages))).json()
        b = (await two.post(CHAT, json=chat_body(messages=messages))).json()
    assert a["choices"] == b["choices"]
    assert a["usage"] == b["usage"]
    assert a["id"] == b["id"]  # ids come from a per-app counter: same sequence, same ids


async def test_every_response_carries_a_request_id_header(sim):
    async with sim() as client:
        responses = [
            await client.post(CHAT, json=chat_body()),
            await client.post(CHAT, json=chat_body(model="nope")),
            await client.get("/v1/models"),
            await client.get("/console"),
            await client.post("/v1/nope"),
        ]
    ids = [r.headers["x-oneapi-request-id"] for r in responses]
    assert all(re.fullmatch(REQUEST_ID, i) for i in ids)
    assert len(set(ids)) == len(ids)


async def test_openai_flavor_sends_x_request_id_and_rate_limit_headers(sim):
    async with sim(flavor="openai") as client:
        response = await client.post(CHAT, json=chat_body())
    assert re.fullmatch(r"req_[0-9a-f]{32}", response.headers["x-request-id"])
    assert response.headers["x-ratelimit-remaining-requests"] == "499"
    assert "x-oneapi-request-id" not in response.headers


async def test_stream_has_new_api_headers_and_chunk_shape(sim):
    async with sim() as client:
        response = await client.post(CHAT, json=stream_body(include_usage=True))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.text.endswith("data: [DONE]\n\n")
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "gpt-4o-mini-2024-07-18"
        assert {"id", "created", "system_fingerprint", "obfuscation"} <= set(chunk)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0] == {
        "index": 0,
        "delta": {"role": "assistant", "content": "", "refusal": None},
        "logprobs": None,
        "finish_reason": None,
    }
    assert chunks[1]["choices"][0]["delta"] == {"content": "pong"}
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[3]["choices"] == []
    assert chunks[3]["usage"]["total_tokens"] == chunks[3]["usage"]["prompt_tokens"] + 1


async def test_stream_without_include_usage_has_no_usage_chunk(sim):
    async with sim() as client:
        response = await client.post(CHAT, json=chat_body(stream=True))
    chunks = [orjson.loads(e) for e in sse_events(response.text)[:-1]]
    assert all(c["choices"] for c in chunks)
    assert all("usage" not in c for c in chunks)


async def test_stream_and_non_stream_agree_on_content_and_usage(sim):
    messages = [{"role": "user", "content": "Describe streaming."}]
    async with sim() as client:
        plain = (await client.post(CHAT, json=chat_body(messages=messages))).json()
        streamed = await client.post(CHAT, json=stream_body(messages=messages))
    chunks = [orjson.loads(e) for e in sse_events(streamed.text)[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"] == plain["usage"]


async def test_models_lists_the_catalogue_in_openai_shape(sim):
    async with sim() as client:
        response = await client.get("/v1/models")
    body = response.json()
    assert response.status_code == 200
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [m.id for m in COMETAPI.catalogue.models]
    assert set(body["data"][0]) == {"id", "object", "created", "owned_by"}


async def test_models_requires_a_key(sim):
    async with sim(headers={}) as client:
        response = await client.get("/v1/models")
    assert response.status_code == 401
