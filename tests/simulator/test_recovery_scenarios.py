"""The recovery scenarios of issue 12, each over a real socket, with scaled timings.

A fake window clock (``create_app(monotonic=...)``) makes the retry-after windows and the
outage exact; one test runs an outage on the real clock at a small time scale.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import httpx2
import orjson
import pytest
from sim_helpers import AUTH, CHAT, chat_body, scenario, sse_events, stream_body

from chatcontract.simulator import SimulatorServer, create_app
from chatcontract.simulator.answers import answer_for, prompt_tokens

SCALE = 0.01
PROMPT = [{"role": "user", "content": "Describe the gateway in one sentence."}]
FULL = answer_for(PROMPT).content
PIECES = answer_for(PROMPT).pieces
_keys = itertools.count()


class WindowClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def window_clock() -> WindowClock:
    return WindowClock()


def _serve(flavor: str, clock: WindowClock | None = None) -> Iterator[SimulatorServer]:
    app = create_app(
        flavor=flavor,
        time_scale=SCALE,
        ping_interval_ms=50,
        **({"monotonic": clock} if clock is not None else {}),
    )
    with SimulatorServer(app=app) as server:
        yield server


@pytest.fixture(scope="module")
def server(window_clock: WindowClock) -> Iterator[SimulatorServer]:
    """A cometapi simulator at time scale 0.01 whose fault windows follow ``window_clock``."""
    yield from _serve("cometapi", window_clock)


@pytest.fixture(scope="module")
def openai_server() -> Iterator[SimulatorServer]:
    yield from _serve("openai")


@pytest.fixture
def client(server: SimulatorServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=server.root_url, headers=AUTH, timeout=10) as http:
        yield http


def control(name: str, **more: str) -> dict[str, str]:
    """Scenario headers with a fresh state key: each test gets its own counts and windows."""
    return scenario(name, **{"X-Chatcontract-State-Key": f"k{next(_keys)}", **more})


def body(stream: bool, **extra) -> dict:
    return stream_body(messages=PROMPT, **extra) if stream else chat_body(messages=PROMPT, **extra)


def text_of(response: httpx2.Response, stream: bool) -> str:
    if not stream:
        return response.json()["choices"][0]["message"]["content"]
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


MODES = pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])


# --- faults that pass -----------------------------------------------------------------------


@MODES
def test_reset_once_drops_the_first_connection_then_answers_in_full(client, stream):
    headers = control("reset_once")
    with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
        client.post(CHAT, json=body(stream), headers=headers)
    assert text_of(client.post(CHAT, json=body(stream), headers=headers), stream) == FULL


@pytest.mark.parametrize(
    ("name", "status"),
    [("server_error_once", 500), ("rate_limit_once", 429)],
    ids=["500-once", "429-once-without-retry-after"],
)
@MODES
def test_a_once_scenario_fails_the_first_request_only(client, name, status, stream):
    headers = control(name)
    first = client.post(CHAT, json=body(stream), headers=headers)
    assert first.status_code == status
    assert "retry-after" not in first.headers and "retry-after-ms" not in first.headers
    second = client.post(CHAT, json=body(stream), headers=headers)
    assert (second.status_code, text_of(second, stream)) == (200, FULL)


@pytest.mark.parametrize(
    ("name", "status"),
    [("rate_limit", 429), ("upstream_unavailable", 503), ("content_policy", 400)],
    ids=["429-always", "503-always", "content-policy-always"],
)
def test_an_always_scenario_never_lets_a_request_through(client, name, status):
    headers = control(name)
    assert [client.post(CHAT, json=body(False), headers=headers).status_code for _ in range(4)] == [
        status
    ] * 4


@pytest.mark.parametrize(
    ("name", "headers"),
    [
        ("rate_limit_retry_after", {"retry-after-ms": "10", "retry-after": "0.010"}),
        ("rate_limit_retry_after_ms", {"retry-after-ms": "10"}),
    ],
    ids=["retry-after-and-ms", "retry-after-ms-only"],
)
def test_a_429_window_asks_for_its_scaled_wait_and_ends_when_it_passes(
    client, window_clock, name, headers
):
    control_headers = control(name)
    first = client.post(CHAT, json=body(False), headers=control_headers)
    assert first.status_code == 429
    assert {k: first.headers.get(k) for k in ("retry-after-ms", "retry-after")} == {
        "retry-after-ms": headers["retry-after-ms"],
        "retry-after": headers.get("retry-after"),
    }
    window_clock.now += 0.009  # inside the 1 s window scaled to 10 ms
    assert client.post(CHAT, json=body(False), headers=control_headers).status_code == 429
    window_clock.now += 0.002
    after = client.post(CHAT, json=body(False), headers=control_headers)
    assert (after.status_code, text_of(after, False)) == (200, FULL)


def test_a_flapping_outage_is_down_for_its_window_with_brief_recoveries(client, window_clock):
    headers = control("flapping_outage")
    statuses = [client.post(CHAT, json=body(False), headers=headers).status_code for _ in range(10)]
    assert statuses == [503, 503, 503, 503, 200, 503, 503, 503, 503, 200]
    window_clock.now += 0.6  # the 60 s outage at scale 0.01
    assert client.post(CHAT, json=body(False), headers=headers).status_code == 200


def test_a_flapping_outage_ends_on_the_real_clock_at_a_small_time_scale(server):
    app = create_app(time_scale=0.002)  # 60 s -> 0.12 s
    with (
        SimulatorServer(app=app) as fast,
        httpx2.Client(base_url=fast.root_url, headers=AUTH, timeout=10) as http,
    ):
        assert http.post(
            CHAT, json=body(False), headers=scenario("flapping_outage")
        ).status_code == (503)
        time.sleep(0.15)
        assert http.post(
            CHAT, json=body(False), headers=scenario("flapping_outage")
        ).status_code == (200)


def test_the_reset_endpoint_forgets_counts_and_windows(client, server):
    headers = control("server_error_once")
    assert client.post(CHAT, json=body(False), headers=headers).status_code == 500
    assert client.post(CHAT, json=body(False), headers=headers).status_code == 200
    reset = client.post("/_chatcontract/reset")
    assert reset.status_code == 200 and reset.json()["reset"] is True
    assert client.post(CHAT, json=body(False), headers=headers).status_code == 500
    server.reset()
    assert client.post(CHAT, json=body(False), headers=headers).status_code == 500


def test_state_keys_keep_separate_counts(client):
    key = {"X-Chatcontract-State-Key": "shared-a"}
    other = {"X-Chatcontract-State-Key": "shared-b"}
    assert (
        client.post(
            CHAT, json=body(False), headers=scenario("server_error_once", **key)
        ).status_code
        == 500
    )
    assert (
        client.post(
            CHAT, json=body(False), headers=scenario("server_error_once", **other)
        ).status_code
        == 500
    )
    assert (
        client.post(
            CHAT, json=body(False), headers=scenario("server_error_once", **key)
        ).status_code
        == 200
    )


# --- silence and slowness, scaled -------------------------------------------------------------


@MODES
def test_silence_holds_the_request_past_a_read_limit(client, stream):
    # no_response holds 10 min; scaled by 0.01 that is 6 s, far above the 0.2 s limit.
    with pytest.raises(httpx2.ReadTimeout):
        client.post(CHAT, json=body(stream), headers=control("no_response"), timeout=0.2)


def test_a_late_first_token_arrives_after_the_scaled_delay_with_keepalives(client):
    started = time.monotonic()
    with client.stream("POST", CHAT, json=body(True), headers=control("late_first_token")) as r:
        raw = b"".join(r.iter_bytes())
    elapsed = time.monotonic() - started
    assert elapsed >= 0.2  # 20 s x 0.01
    assert b": PING" in raw  # keep-alives every 10 s x 0.01 during the wait
    events = [e for e in sse_events(raw.decode()) if e != "[DONE]"]
    events = [e for e in events if orjson.loads(e)["choices"]]
    assert (
        "".join(
            orjson.loads(e)["choices"][0]["delta"].get("content") or ""
            for e in events
            if "choices" in e
        )
        == FULL
    )


def _stream_lines(client, headers, into, **kw) -> None:
    with client.stream("POST", CHAT, json=body(True), headers=headers, **kw) as response:
        into.extend(line for line in response.iter_lines() if line.startswith("data: "))


def _contents(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        chunk = orjson.loads(line[6:])
        if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
            out.append(chunk["choices"][0]["delta"]["content"])
    return out


@pytest.mark.parametrize("tokens", [1, 3], ids=["after-1", "after-3"])
def test_cut_after_n_tokens_delivers_exactly_n_then_closes(client, tokens):
    lines: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError):
        _stream_lines(
            client, control("cut_stream", **{"X-Chatcontract-After-Tokens": str(tokens)}), lines
        )
    assert _contents(lines) == list(PIECES[:tokens])


def test_stall_after_n_tokens_is_silent_past_an_idle_limit(client):
    lines: list[str] = []
    headers = control("stall_mid_stream", **{"X-Chatcontract-After-Tokens": "2"})
    # 60 s x 0.01 = 0.6 s of silence, without keep-alives: a 0.2 s idle limit trips.
    with pytest.raises(httpx2.ReadTimeout):
        _stream_lines(client, headers, lines, timeout=httpx2.Timeout(5, read=0.2))
    assert _contents(lines) == list(PIECES[:2])


def test_a_malformed_nth_event_follows_n_good_tokens(client):
    lines: list[str] = []
    _stream_lines(client, control("malformed_chunk", **{"X-Chatcontract-After-Tokens": "2"}), lines)
    broken = [line for line in lines if line != "data: [DONE]" and not _json_ok(line[6:])]
    assert len(broken) == 1
    assert _contents(lines[: lines.index(broken[0])]) == list(PIECES[:2])
    assert lines[-1] == "data: [DONE]"


def _json_ok(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def test_no_done_ends_a_complete_answer_without_the_terminator(client):
    lines: list[str] = []
    _stream_lines(client, control("no_done"), lines)
    assert "data: [DONE]" not in lines
    assert "".join(_contents(lines)) == FULL


# --- refusals that decide the next route ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code", "words"),
    [
        ("context_length", "context_length_exceeded", "maximum context length"),
        ("content_policy", "content_policy_violation", "safety system"),
    ],
    ids=["context-length", "content-policy"],
)
@pytest.mark.parametrize("flavor", ["cometapi", "openai"])
def test_a_refusal_is_a_400_in_the_providers_words(
    server, openai_server, name, code, words, flavor
):
    target = server if flavor == "cometapi" else openai_server
    with httpx2.Client(base_url=target.root_url, headers=AUTH, timeout=10) as http:
        response = http.post(CHAT, json=body(True), headers=control(name))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert words in error["message"]
    assert ("(request id: " in error["message"]) is (flavor == "cometapi")


def test_the_context_message_counts_the_prompt_tokens(openai_server):
    with httpx2.Client(base_url=openai_server.root_url, headers=AUTH, timeout=10) as http:
        message = http.post(CHAT, json=body(False), headers=control("context_length")).json()
    assert f"resulted in {prompt_tokens(PROMPT)} tokens" in message["error"]["message"]


def test_the_reported_model_is_the_fallback_when_the_primary_model_is_down(client):
    headers = control("upstream_unavailable", **{"X-Chatcontract-Scenario-Models": "gpt-4.1-nano"})
    primary = client.post(
        CHAT, json=chat_body(model="gpt-4.1-nano", messages=PROMPT), headers=headers
    )
    assert primary.status_code == 503
    fallback = client.post(
        CHAT, json=chat_body(model="gpt-4o-mini", messages=PROMPT), headers=headers
    )
    assert fallback.status_code == 200
    assert fallback.json()["model"] == "gpt-4o-mini-2024-07-18"


def test_server_wide_scenario_models_scope_the_fault():
    app = create_app(scenario="upstream_unavailable", scenario_models=("gpt-4.1-nano",))
    with (
        SimulatorServer(app=app) as scoped,
        httpx2.Client(base_url=scoped.root_url, headers=AUTH, timeout=10) as http,
    ):
        assert http.post(CHAT, json=chat_body(model="gpt-4.1-nano")).status_code == 503
        assert http.post(CHAT, json=chat_body(model="gpt-4o-mini")).status_code == 200


# --- continuations --------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 4], ids=["after-1", "after-4"])
@MODES
def test_an_assistant_prefix_is_continued_with_only_the_new_text(client, cut, stream):
    partial = "".join(PIECES[:cut])
    messages = [*PROMPT, {"role": "assistant", "content": partial}]
    payload = stream_body(messages=messages) if stream else chat_body(messages=messages)
    rest = text_of(client.post(CHAT, json=payload, headers=control("ok")), stream)
    assert partial + rest == FULL
    assert rest == FULL[len(partial) :]


def test_continue_final_message_is_accepted_as_vllm_takes_it(client):
    messages = [*PROMPT, {"role": "assistant", "content": PIECES[0]}]
    payload = chat_body(messages=messages, continue_final_message=True, add_generation_prompt=False)
    assert PIECES[0] + text_of(client.post(CHAT, json=payload), False) == FULL


@MODES
def test_a_fallback_that_refuses_an_assistant_prefix_answers_400(client, stream):
    messages = [*PROMPT, {"role": "assistant", "content": PIECES[0]}]
    payload = stream_body(messages=messages) if stream else chat_body(messages=messages)
    refused = client.post(CHAT, json=payload, headers=control("refuses_assistant_prefix"))
    assert refused.status_code == 400
    assert "prefill is not supported" in refused.json()["error"]["message"]
    plain = client.post(CHAT, json=body(stream), headers=control("refuses_assistant_prefix"))
    assert text_of(plain, stream) == FULL


# --- control headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Chatcontract-Time-Scale": "fast"},
        {"X-Chatcontract-Time-Scale": "0"},
        {"X-Chatcontract-Time-Scale": "nan"},
        {"X-Chatcontract-After-Tokens": "-1"},
        {"X-Chatcontract-After-Tokens": "many"},
    ],
    ids=["scale-word", "scale-zero", "scale-nan", "after-negative", "after-word"],
)
def test_bad_recovery_control_headers_are_a_loud_400(client, headers):
    response = client.post(CHAT, json=body(False), headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_simulator_control"
    assert error["param"] in headers


def test_a_per_request_time_scale_overrides_the_server(client):
    # 300 ms at the header's scale 1; at the server's 0.01 it would be 3 ms.
    headers = control(
        "slow", **{"X-Chatcontract-Time-Scale": "1", "X-Chatcontract-Delay-Ms": "300"}
    )
    started = time.monotonic()
    response = client.post(CHAT, json=body(False), headers=headers)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3
