"""Every scenario, non-streaming and streaming, served in-process.

Each scenario has one check per mode in ``EXPECT``; a test asserts that table covers exactly the
scenarios the simulator offers, so a new scenario cannot ship untested. Connection-level faults
are also exercised over a real socket in test_live_faults.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx2
import orjson
import pytest
from sim_helpers import CHAT, chat_body, scenario, sse_events, stream_body

from chatcontract.simulator import SCENARIO_NAMES, SCENARIOS, SimulatedDisconnectError
from chatcontract.simulator.scenarios import DRIFT_FIELD, DRIFT_USAGE_FIELD

pytestmark = pytest.mark.anyio

MESSAGES = [{"role": "user", "content": "Describe the gateway in one sentence."}]
DELAY_MS = 60


@dataclass
class Outcome:
    response: httpx2.Response | None
    error: BaseException | None
    elapsed: float

    @property
    def ok(self) -> httpx2.Response:
        assert self.error is None, f"unexpected {self.error!r}"
        assert self.response is not None
        return self.response

    def json(self) -> dict:
        return self.ok.json()

    def chunks(self) -> list[dict]:
        """Parsed chunks of a stream (must end with [DONE] and be valid JSON)."""
        events = sse_events(self.ok.text)
        assert events[-1] == "[DONE]"
        return [orjson.loads(e) for e in events[:-1]]


async def call(client: httpx2.AsyncClient, name: str, *, stream: bool) -> Outcome:
    body = stream_body(messages=MESSAGES) if stream else chat_body(messages=MESSAGES)
    headers = scenario(name, **{"X-Chatcontract-Delay-Ms": str(DELAY_MS)})
    started = time.perf_counter()
    try:
        response = await client.post(CHAT, json=body, headers=headers)
    except SimulatedDisconnectError as exc:
        return Outcome(None, exc, time.perf_counter() - started)
    return Outcome(response, None, time.perf_counter() - started)


def finish_reasons(chunks: list[dict]) -> list:
    return [c["choices"][0].get("finish_reason") for c in chunks if c["choices"]]


def content_of(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def usage_chunk(chunks: list[dict]) -> dict:
    return next(c for c in chunks if c.get("usage"))


# --- checks: each asserts what the scenario promises --------------------------------------------


def plain_ok(o: Outcome) -> None:
    body = o.json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["choices"][0]["message"]["content"]


def stream_ok(o: Outcome) -> None:
    chunks = o.chunks()
    assert finish_reasons(chunks)[-1] == "stop"
    assert content_of(chunks)


def plain_delayed(o: Outcome) -> None:
    plain_ok(o)
    assert o.elapsed >= DELAY_MS / 1000


def stream_delayed(o: Outcome) -> None:
    stream_ok(o)
    assert o.elapsed >= DELAY_MS / 1000


def disconnected(o: Outcome) -> None:
    assert isinstance(o.error, SimulatedDisconnectError)


def held_then_disconnected(o: Outcome) -> None:
    disconnected(o)
    assert o.elapsed >= DELAY_MS / 1000


def stream_no_done(o: Outcome) -> None:
    events = sse_events(o.ok.text)
    assert "[DONE]" not in events
    chunks = [orjson.loads(e) for e in events]
    assert "stop" in finish_reasons(chunks)
    assert usage_chunk(chunks)


def plain_no_finish(o: Outcome) -> None:
    assert o.json()["choices"][0]["finish_reason"] is None


def stream_no_finish(o: Outcome) -> None:
    chunks = o.chunks()
    assert content_of(chunks)
    assert all(reason is None for reason in finish_reasons(chunks))


def plain_invalid_json(o: Outcome) -> None:
    assert o.ok.status_code == 200
    assert o.ok.headers["content-type"] == "application/json"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(o.ok.content)


def stream_malformed(o: Outcome) -> None:
    events = sse_events(o.ok.text)
    assert events[-1] == "[DONE]"
    broken = []
    for event in events[:-1]:
        try:
            orjson.loads(event)
        except orjson.JSONDecodeError:
            broken.append(event)
    assert len(broken) == 1


def plain_error_in_200(o: Outcome) -> None:
    assert o.ok.status_code == 200
    assert set(o.json()) == {"error"}


def stream_inband_error(o: Outcome) -> None:
    events = [orjson.loads(e) for e in sse_events(o.ok.text)[:-1]]
    assert sse_events(o.ok.text)[-1] == "[DONE]"
    assert events[0]["object"] == "chat.completion.chunk"
    assert "error" in events[-1]
    assert events[-1]["error"]["message"]


def plain_empty_choices(o: Outcome) -> None:
    assert o.json()["choices"] == []


def stream_empty_choices(o: Outcome) -> None:
    assert all(c["choices"] == [] for c in o.chunks())


def plain_empty_content(o: Outcome) -> None:
    body = o.json()
    assert body["choices"][0]["message"]["content"] == ""
    assert body["usage"]["completion_tokens"] == 0


def stream_empty_content(o: Outcome) -> None:
    chunks = o.chunks()
    assert content_of(chunks) == ""
    assert finish_reasons(chunks)[-1] == "stop"


def plain_missing_usage(o: Outcome) -> None:
    assert "usage" not in o.json()


def stream_missing_usage(o: Outcome) -> None:
    assert all("usage" not in c for c in o.chunks())


def _mismatched(usage: dict) -> bool:
    return usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]


def plain_usage_mismatch(o: Outcome) -> None:
    assert _mismatched(o.json()["usage"])


def stream_usage_mismatch(o: Outcome) -> None:
    assert _mismatched(usage_chunk(o.chunks())["usage"])


def plain_wrong_types(o: Outcome) -> None:
    body = o.json()
    assert isinstance(body["created"], str)
    assert isinstance(body["choices"][0]["message"]["content"], int)


def stream_wrong_types(o: Outcome) -> None:
    chunks = o.chunks()
    assert all(isinstance(c["created"], str) for c in chunks)
    assert any(
        isinstance(c["choices"][0]["delta"].get("content"), int) for c in chunks if c["choices"]
    )


def plain_extra_field(o: Outcome) -> None:
    body = o.json()
    assert DRIFT_FIELD in body
    assert DRIFT_USAGE_FIELD in body["usage"]


def stream_extra_field(o: Outcome) -> None:
    chunks = o.chunks()
    assert all(DRIFT_FIELD in c for c in chunks)
    assert DRIFT_USAGE_FIELD in usage_chunk(chunks)["usage"]


def plain_missing_field(o: Outcome) -> None:
    assert "finish_reason" not in o.json()["choices"][0]


def stream_missing_field(o: Outcome) -> None:
    assert all("finish_reason" not in c["choices"][0] for c in o.chunks() if c["choices"])


def plain_content_filter(o: Outcome) -> None:
    choice = o.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None


def stream_content_filter(o: Outcome) -> None:
    chunks = o.chunks()
    assert finish_reasons(chunks)[-1] == "content_filter"
    assert content_of(chunks) == ""


def plain_length(o: Outcome) -> None:
    body = o.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert 0 < body["usage"]["completion_tokens"] < 10


def stream_length(o: Outcome) -> None:
    assert finish_reasons(o.chunks())[-1] == "length"


def status(
    code: int, *, content_type: str | None = None, json_code: str | None = None
) -> Callable[[Outcome], None]:
    def check(o: Outcome) -> None:
        assert o.ok.status_code == code
        if content_type is not None:
            assert o.ok.headers["content-type"].startswith(content_type)
        if json_code is not None:
            assert o.ok.json()["error"]["code"] == json_code

    return check


def retry_after(*, ms: str, seconds: str | None) -> Callable[[Outcome], None]:
    def check(o: Outcome) -> None:
        assert o.ok.status_code == 429
        assert o.ok.headers["retry-after-ms"] == ms
        assert o.ok.headers.get("retry-after") == seconds

    return check


EXPECT: dict[str, tuple[Callable[[Outcome], None], Callable[[Outcome], None]]] = {
    "ok": (plain_ok, stream_ok),
    "slow": (plain_delayed, stream_delayed),
    "slow_first_token": (plain_delayed, stream_delayed),
    "stall_mid_stream": (plain_delayed, stream_delayed),
    "cut_stream": (disconnected, disconnected),
    "no_done": (plain_ok, stream_no_done),
    "done_without_finish_reason": (plain_no_finish, stream_no_finish),
    "malformed_chunk": (plain_invalid_json, stream_malformed),
    "inband_error_chunk": (plain_error_in_200, stream_inband_error),
    "error_in_200": (plain_error_in_200, plain_error_in_200),
    "empty_choices": (plain_empty_choices, stream_empty_choices),
    "empty_content": (plain_empty_content, stream_empty_content),
    "missing_usage": (plain_missing_usage, stream_missing_usage),
    "usage_mismatch": (plain_usage_mismatch, stream_usage_mismatch),
    "wrong_types": (plain_wrong_types, stream_wrong_types),
    "drift_extra_field": (plain_extra_field, stream_extra_field),
    "drift_missing_field": (plain_missing_field, stream_missing_field),
    "content_filter": (plain_content_filter, stream_content_filter),
    "length": (plain_length, stream_length),
    "rate_limit": (status(429), status(429)),
    "quota_exhausted": (status(403, json_code="insufficient_user_quota"),) * 2,
    "server_error": (status(500, json_code="do_request_failed"),) * 2,
    "upstream_unavailable": (status(503, json_code="bad_response_status_code"),) * 2,
    "gateway_timeout": (status(504, content_type="text/html"),) * 2,
    "cloudflare_524": (status(524, content_type="text/html"),) * 2,
    "html_error": (status(502, content_type="text/html"),) * 2,
    "bad_json": (plain_invalid_json, plain_invalid_json),
    "no_response": (held_then_disconnected, held_then_disconnected),
    "reset": (disconnected, disconnected),
    # The first request of a recovery scenario gets its fault; later ones are tested in
    # test_recovery_scenarios.py over real sockets.
    "reset_once": (disconnected, disconnected),
    "server_error_once": (status(500, json_code="do_request_failed"),) * 2,
    "rate_limit_once": (status(429),) * 2,
    "rate_limit_retry_after": (retry_after(ms="60", seconds="0.060"),) * 2,
    "rate_limit_retry_after_ms": (retry_after(ms="60", seconds=None),) * 2,
    "late_first_token": (plain_delayed, stream_delayed),
    "context_length": (status(400, json_code="context_length_exceeded"),) * 2,
    "content_policy": (status(400, json_code="content_policy_violation"),) * 2,
    "refuses_assistant_prefix": (plain_ok, stream_ok),  # a request ending with a user message
    "flapping_outage": (status(503, json_code="bad_response_status_code"),) * 2,
}


def test_every_scenario_has_an_expectation():
    assert set(EXPECT) == set(SCENARIO_NAMES)


def test_every_scenario_documents_both_modes_in_one_line():
    for item in SCENARIOS.values():
        assert item.summary
        assert item.non_stream
        assert item.stream
        assert "\n" not in item.summary


@pytest.mark.parametrize("name", SCENARIO_NAMES)
async def test_scenario_non_streaming(sim, name):
    async with sim() as client:
        EXPECT[name][0](await call(client, name, stream=False))


@pytest.mark.parametrize("name", SCENARIO_NAMES)
async def test_scenario_streaming(sim, name):
    async with sim() as client:
        EXPECT[name][1](await call(client, name, stream=True))


async def test_a_server_wide_scenario_applies_without_a_header(sim):
    async with sim(scenario="rate_limit") as client:
        response = await client.post(CHAT, json=chat_body())
    assert response.status_code == 429


async def test_the_request_header_overrides_the_server_scenario(sim):
    async with sim(scenario="rate_limit") as client:
        response = await client.post(CHAT, json=chat_body(), headers=scenario("ok"))
    assert response.status_code == 200


async def test_the_delay_header_overrides_the_server_delay(sim):
    async with sim(scenario="slow", delay_ms=5_000) as client:
        started = time.perf_counter()
        response = await client.post(
            CHAT, json=chat_body(), headers={"X-Chatcontract-Delay-Ms": "30"}
        )
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert 0.03 <= elapsed < 2


async def test_the_server_delay_replaces_the_scenario_default(sim):
    async with sim(scenario="slow", delay_ms=40) as client:
        started = time.perf_counter()
        await client.post(CHAT, json=chat_body())
        elapsed = time.perf_counter() - started
    assert 0.04 <= elapsed < 1.5  # the default for slow is 2 s


@pytest.mark.parametrize(
    "headers",
    [
        scenario("no_such_thing"),
        {"X-Chatcontract-Delay-Ms": "soon"},
        {"X-Chatcontract-Delay-Ms": "-5"},
    ],
    ids=["unknown-scenario", "delay-not-a-number", "delay-negative"],
)
async def test_bad_control_headers_are_a_loud_400(sim, headers):
    async with sim() as client:
        response = await client.post(CHAT, json=chat_body(), headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_simulator_control"
    assert error["message"].startswith("chatcontract simulator: ")


async def test_faults_come_after_validation(sim):
    async with sim(scenario="server_error") as client:
        response = await client.post(CHAT, json=chat_body(model="nope-model"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_not_found"


async def test_openai_flavor_faults_use_openai_bodies(sim):
    async with sim(flavor="openai", scenario="server_error") as client:
        response = await client.post(CHAT, json=chat_body())
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
