import time

import httpx2
import pytest
from client_helpers import (
    COMPLETION,
    LONG,
    PONG,
    RecordingSink,
    Sleeps,
    call_refused_before_sending,
    contract_for,
    env_for,
)

from chatcontract.client import (
    ChatClient,
    DeadlineExhaustedError,
    StreamInterrupted,
)
from chatcontract.contract import RetryPolicy, Timeouts
from chatcontract.telemetry.events import DeadlineExhausted

# Per-attempt limits that would stack to minutes if each attempt got its own.
GENEROUS = Timeouts(connect_ms=30_000, first_byte_ms=30_000, first_token_ms=30_000, total_ms=60_000)
RETRY = RetryPolicy(max_attempts=3, backoff_initial_ms=5, jitter=0.0)


def silent_client(server, *, model_fallback, sinks=()):
    contract = contract_for(
        server.base_url,
        model_fallback=model_fallback,
        timeouts=GENEROUS,
        retry=RETRY,
        reserve_ms=800,
    )
    return ChatClient.from_contract(
        contract, environ=env_for(server.api_key), telemetry_sinks=sinks
    )


@pytest.mark.parametrize("model_fallback", [True, False], ids=["with-fallback", "single-route"])
def test_a_silent_upstream_ends_at_the_call_deadline_with_every_attempt_listed(
    sims, model_fallback
):
    sink = RecordingSink()
    started = time.monotonic()
    with (
        silent_client(sims("no_response"), model_fallback=model_fallback, sinks=[sink]) as client,
        pytest.raises(DeadlineExhaustedError) as caught,
    ):
        client.complete(PONG, max_tokens=16, deadline_s=2.0)
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 3.0  # not 30 s per attempt times the attempts
    error = caught.value
    assert error.outcome == "deadline_exhausted"
    assert (error.failure.category, error.failure.code) == ("timeout", "deadline")
    assert "2 s deadline" in str(error)
    assert error.attempts and all(a.failure.category == "timeout" for a in error.attempts)
    assert sum(a.timings.total_ms for a in error.attempts) < 2_500
    expected_routes = ["primary", "smaller-model"] if model_fallback else ["primary"]
    assert [a.route for a in error.attempts] == expected_routes
    assert [e.attempts for e in sink.of(DeadlineExhausted)] == [len(error.attempts)]


def test_each_attempt_timeout_is_cut_to_what_is_left_minus_the_fallback_reserve(sims):
    with (
        silent_client(sims("no_response"), model_fallback=True) as client,
        pytest.raises(DeadlineExhaustedError) as caught,
    ):
        client.complete(PONG, max_tokens=16, deadline_s=2.0)
    first, second = caught.value.attempts
    assert first.request.timeout_budget_ms == pytest.approx(1_200, abs=50)  # 2 s - 0.8 s
    assert second.request.timeout_budget_ms == pytest.approx(800, abs=80)  # the reserve


def test_a_retry_wait_longer_than_the_deadline_is_not_slept(sims):
    sleeps = Sleeps()
    server = sims("rate_limit", flavor="openai")
    contract = contract_for(server.base_url, preset="openai", retry=RetryPolicy(max_attempts=3))
    with (
        ChatClient.from_contract(contract, environ=env_for(server.api_key), sleep=sleeps) as client,
        pytest.raises(DeadlineExhaustedError) as caught,
    ):
        client.complete(PONG, max_tokens=16, deadline_s=0.8)  # retry-after-ms is 1000
    assert sleeps.calls == []
    assert len(caught.value.attempts) == 1
    assert "needs" in str(caught.value)


def test_a_trickling_stream_is_stopped_at_the_deadline(sims):
    slow = sims("slow", delay_ms=4_000, ping_interval_ms=50)
    contract = contract_for(slow.base_url, timeouts=GENEROUS)
    started = time.monotonic()
    with (
        ChatClient.from_contract(contract, environ=env_for(slow.api_key)) as client,
        pytest.raises(StreamInterrupted) as caught,
        client.stream(LONG, max_tokens=64, deadline_s=1.0) as stream,
    ):
        for _ in stream:
            pass
    assert time.monotonic() - started < 1.6
    # The deadline (1 s) ended it, long before the idle limit (10 s): named for the deadline.
    assert caught.value.failure.code == "deadline"
    assert caught.value.partial_content


BAD_DEADLINES = [
    pytest.param(0, ValueError, id="zero"),
    pytest.param(-1.5, ValueError, id="negative"),
    pytest.param(float("nan"), ValueError, id="nan"),
    pytest.param(float("inf"), ValueError, id="infinite"),  # was OverflowError from the clock
    pytest.param(1e300, ValueError, id="past-an-hour"),
    pytest.param(3_600.5, ValueError, id="just-past-an-hour"),
    pytest.param("30", TypeError, id="text"),  # was "'>' not supported between str and int"
    pytest.param(True, TypeError, id="bool"),  # was a 1 s deadline
]


@pytest.mark.parametrize("mode", ["complete", "stream", "async"])
@pytest.mark.parametrize(("deadline", "error"), BAD_DEADLINES)
def test_a_deadline_that_is_not_a_number_of_seconds_up_to_an_hour_is_refused(deadline, error, mode):
    with pytest.raises(error) as caught:
        call_refused_before_sending(mode, deadline_s=deadline)
    message = str(caught.value)
    assert message.startswith("deadline_s must be a number of seconds")
    assert "deadline_s=30" in message  # says what to write


def test_a_deadline_of_an_hour_is_taken():
    answers = iter([httpx2.Response(200, json=COMPLETION)])
    contract = contract_for("http://provider.test/v1")
    with ChatClient.from_contract(
        contract,
        environ=env_for("cc-secret-key-0001"),
        transport=httpx2.MockTransport(lambda request: next(answers)),
    ) as client:
        assert client.complete(PONG, deadline_s=3_600).content == "pong"
