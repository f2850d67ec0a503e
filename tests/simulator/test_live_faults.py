"""Faults that need a real socket: hang-ups, held requests, stalls and stream timing (uvicorn)."""

from __future__ import annotations

import threading
import time

import httpx2
import orjson
import pytest
from sim_helpers import AUTH, CHAT, chat_body, scenario, stream_body

from chatcontract.simulator import SimulatorServer

LONG_PROMPT = [{"role": "user", "content": "Describe the gateway in one sentence."}]


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_reset_closes_the_connection_without_a_response(live, stream):
    body = stream_body() if stream else chat_body()
    with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
        live.post(CHAT, json=body, headers=scenario("reset"))


def test_the_server_keeps_serving_after_a_reset(live):
    with pytest.raises(httpx2.RemoteProtocolError):
        live.post(CHAT, json=chat_body(), headers=scenario("reset"))
    assert live.post(CHAT, json=chat_body()).status_code == 200


def _read_stream(client: httpx2.Client, headers: dict[str, str], into: list[str], **kw) -> None:
    """Read a stream's lines into ``into`` (kept even when reading fails), checking it is a 200."""
    body = stream_body(messages=LONG_PROMPT)
    with client.stream("POST", CHAT, json=body, headers=headers, **kw) as response:
        into.append(f"status: {response.status_code}")
        into.extend(response.iter_lines())


def test_cut_stream_delivers_half_the_events_then_breaks(live):
    lines: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):
        _read_stream(live, scenario("cut_stream"), lines)
    assert lines[0] == "status: 200"
    events = [line for line in lines if line.startswith("data: ")]
    assert events
    assert "data: [DONE]" not in events
    assert all(orjson.loads(e[6:])["choices"][0]["finish_reason"] is None for e in events)


def test_cut_non_stream_body_is_shorter_than_its_content_length(live):
    with pytest.raises(httpx2.RemoteProtocolError, match=r"incomplete|without sending complete"):
        live.post(CHAT, json=chat_body(), headers=scenario("cut_stream"))


def test_no_response_sends_nothing_until_the_client_gives_up(live):
    started = time.monotonic()
    with pytest.raises(httpx2.ReadTimeout):
        live.post(CHAT, json=chat_body(), headers=scenario("no_response"), timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2


def test_no_response_hold_is_bounded_by_the_delay(live):
    with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
        live.post(
            CHAT,
            json=chat_body(),
            headers=scenario("no_response", **{"X-Chatcontract-Delay-Ms": "100"}),
        )


def test_a_pending_no_response_request_does_not_block_shutdown():
    outcome: list[BaseException | int] = []
    server = SimulatorServer(scenario="no_response", shutdown_timeout_s=5).start()

    def call() -> None:
        try:
            with httpx2.Client(headers=AUTH, timeout=30) as client:
                outcome.append(client.post(server.root_url + CHAT, json=chat_body()).status_code)
        except httpx2.HTTPError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)  # the request is now held by the server
    started = time.monotonic()
    server.stop()
    stop_seconds = time.monotonic() - started
    caller.join(5)
    assert stop_seconds < 3
    assert not server.running
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx2.RemoteProtocolError)


def test_stall_mid_stream_trips_a_read_timeout_after_partial_content(live):
    lines: list[str] = []
    headers = scenario("stall_mid_stream", **{"X-Chatcontract-Delay-Ms": "5000"})
    started = time.monotonic()
    with pytest.raises(httpx2.ReadTimeout):
        _read_stream(live, headers, lines, timeout=0.3)
    assert any(line.startswith("data: {") for line in lines)
    assert ": PING" not in lines  # a stall is silent
    assert time.monotonic() - started < 2


def _timed_lines(client: httpx2.Client, headers: dict[str, str]) -> list[tuple[float, str]]:
    stamped = []
    started = time.monotonic()
    with client.stream(
        "POST", CHAT, json=stream_body(messages=LONG_PROMPT), headers=headers
    ) as response:
        stamped.extend((time.monotonic() - started, line) for line in response.iter_lines() if line)
    return stamped


def test_slow_first_token_sends_the_role_at_once_then_pings_then_content(live):
    stamped = _timed_lines(live, scenario("slow_first_token", **{"X-Chatcontract-Delay-Ms": "300"}))
    first_at, first = stamped[0]
    assert '"role":"assistant"' in first
    assert first_at < 0.25
    content_at = next(t for t, line in stamped if '"content":"' in line and '"role"' not in line)
    pings = [t for t, line in stamped if line == ": PING"]
    assert content_at >= 0.3
    assert len(pings) >= 3  # the session server pings every 50 ms
    assert all(first_at <= t <= content_at for t in pings)
    assert stamped[-1][1] == "data: [DONE]"


def test_slow_stream_trickles_over_the_delay(live):
    stamped = _timed_lines(live, scenario("slow", **{"X-Chatcontract-Delay-Ms": "400"}))
    data = [t for t, line in stamped if line.startswith("data: ")]
    assert data[-1] - data[0] >= 0.25
    assert stamped[-1][1] == "data: [DONE]"


def test_stall_on_a_non_stream_request_holds_the_body_midway(live):
    started = time.monotonic()
    response = live.post(
        CHAT,
        json=chat_body(),
        headers=scenario("stall_mid_stream", **{"X-Chatcontract-Delay-Ms": "200"}),
    )
    assert time.monotonic() - started >= 0.2
    assert response.json()["choices"][0]["message"]["content"] == "pong"
