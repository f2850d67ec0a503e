import json

import httpx2
import pytest
from client_helpers import PONG, RecordingSink, contract_for, env_for, trail

from chatcontract.client import BudgetExceededError, CallFailedError, ChatClient, KillSwitchError
from chatcontract.contract import CostCaps, RetryPolicy
from chatcontract.telemetry.events import BudgetRefusal

COMPLETION = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1774412483,'
    b'"model":"gpt-4.1-nano-2025-04-14","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"pong"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}'
)


class Recorder:
    def __init__(self):
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        return httpx2.Response(
            200, headers={"content-type": "application/json"}, content=COMPLETION
        )


def client_with(recorder, *, environ=None, sinks=(), **contract_changes):
    contract = contract_for("http://provider.test/v1", **contract_changes)
    return ChatClient.from_contract(
        contract,
        environ=environ or env_for("cc-key-000111"),
        transport=httpx2.MockTransport(recorder),
        telemetry_sinks=sinks,
    )


@pytest.mark.parametrize(
    ("caps", "max_tokens", "reason"),
    [
        (CostCaps(max_tokens_per_call=100), 500, "max_tokens_cap"),
        (CostCaps(max_tokens_per_call=None, max_cost_per_call_usd=0.000001), 500, "call_cost_cap"),
        (CostCaps(max_tokens_per_call=None, max_cost_per_day_usd=0.000001), 500, "daily_cost_cap"),
    ],
    ids=["tokens", "call-cost", "day-cost"],
)
def test_a_budget_refusal_sends_nothing(caps, max_tokens, reason):
    recorder, sink = Recorder(), RecordingSink()
    with (
        client_with(recorder, caps=caps, sinks=[sink]) as client,
        pytest.raises(BudgetExceededError) as caught,
    ):
        client.complete(PONG, max_tokens=max_tokens)
    assert recorder.requests == []
    assert sink.exchanges == []
    error = caught.value
    assert (error.failure.kind, error.failure.category, error.failure.code) == (
        "budget",
        "budget",
        reason,
    )
    assert error.attempts == ()
    assert "nothing was sent" in str(error)
    assert [(e.reason, e.model) for e in sink.of(BudgetRefusal)] == [(reason, "gpt-4.1-nano")]


def test_a_refused_stream_raises_when_asked_not_when_read():
    recorder = Recorder()
    with (
        client_with(recorder, caps=CostCaps(max_tokens_per_call=10)) as client,
        pytest.raises(BudgetExceededError),
    ):
        client.stream(PONG, max_tokens=11)
    assert recorder.requests == []


def test_the_daily_cap_counts_what_successful_calls_actually_cost():
    # worst case of one call ≈ $6.2e-6 (14 prompt + 16 completion tokens); actual $1.28e-6
    recorder = Recorder()
    caps = CostCaps(max_tokens_per_call=None, max_cost_per_day_usd=0.000007)
    with client_with(recorder, caps=caps) as client:
        first = client.complete(PONG, max_tokens=16)
        with pytest.raises(BudgetExceededError) as caught:
            client.complete(PONG, max_tokens=16)
    assert first.cost_usd == pytest.approx((12 * 0.08 + 1 * 0.32) / 1_000_000)
    assert caught.value.failure.code == "daily_cost_cap"
    assert len(recorder.requests) == 1


def test_the_kill_switch_sends_calls_straight_to_the_first_fallback():
    recorder = Recorder()
    environ = env_for("cc-key-000111", CHATCONTRACT_KILL_SWITCH="1")
    with client_with(recorder, environ=environ, model_fallback=True) as client:
        result = client.complete(PONG, max_tokens=16)
    assert trail(result.attempts) == [("smaller-model", 1, None)]
    assert [json.loads(r.content)["model"] for r in recorder.requests] == ["gpt-4o-mini"]


def test_the_kill_switch_without_a_fallback_refuses_with_a_clear_error():
    recorder, sink = Recorder(), RecordingSink()
    environ = env_for("cc-key-000111", CHATCONTRACT_KILL_SWITCH="on")
    with (
        client_with(recorder, environ=environ, sinks=[sink]) as client,
        pytest.raises(KillSwitchError) as caught,
    ):
        client.complete(PONG, max_tokens=16)
    assert recorder.requests == []
    assert "$CHATCONTRACT_KILL_SWITCH" in str(caught.value)
    assert caught.value.outcome == "kill_switch"
    assert [e.reason for e in sink.of(BudgetRefusal)] == ["kill_switch"]


def test_the_kill_switch_is_read_at_every_call():
    recorder = Recorder()
    environ = env_for("cc-key-000111")
    with client_with(recorder, environ=environ, model_fallback=True) as client:
        before = client.complete(PONG, max_tokens=16).route
        environ["CHATCONTRACT_KILL_SWITCH"] = "1"
        during = client.complete(PONG, max_tokens=16).route
        environ["CHATCONTRACT_KILL_SWITCH"] = "0"
        after = client.complete(PONG, max_tokens=16).route
    assert (before, during, after) == ("primary", "smaller-model", "primary")


NO_RETRY = RetryPolicy(
    max_attempts=1, backoff_initial_ms=1, backoff_max_ms=1, jitter=0.0, retry_after_cap_ms=1_000
)
SERVER_ERROR = b'{"error":{"message":"upstream failed","type":"server_error","code":"boom"}}'


def _failing(status, body, *, headers=None):
    requests = []

    def handler(request):
        requests.append(request)
        return httpx2.Response(
            status, headers={"content-type": "application/json", **(headers or {})}, content=body
        )

    handler.requests = requests
    return handler


def test_failed_attempts_the_provider_may_bill_count_towards_the_daily_cap():
    # Each 500 is charged the prompt estimate (14 tokens at $0.08/M ≈ $1.1e-6).
    handler = _failing(500, SERVER_ERROR)
    with client_with(handler) as client:
        with pytest.raises(CallFailedError) as caught:
            client.complete(PONG, max_tokens=16)
        spent = client._core.guard.spent_today()
    attempts = len(caught.value.attempts)
    assert attempts == 2
    assert spent == pytest.approx(attempts * 14 * 0.08 / 1_000_000)


def test_usage_reported_on_a_failed_answer_is_charged():
    # A 200 whose answer breaks the contract (no choices) but reports usage.
    body = (
        b'{"id":"x","object":"chat.completion","created":1,"model":"gpt-4.1-nano",'
        b'"usage":{"prompt_tokens":1000,"completion_tokens":500,"total_tokens":1500}}'
    )
    handler = _failing(200, body)
    with client_with(handler, retry=NO_RETRY) as client:
        with pytest.raises(CallFailedError):
            client.complete(PONG, max_tokens=16)
        spent = client._core.guard.spent_today()
    assert spent == pytest.approx((1000 * 0.08 + 500 * 0.32) / 1_000_000)


def test_a_rate_limited_attempt_is_not_charged():
    body = b'{"error":{"message":"slow down","type":"rate_limit","code":"rate_limit_exceeded"}}'
    handler = _failing(429, body, headers={"retry-after": "0"})
    with client_with(handler, retry=NO_RETRY) as client:
        with pytest.raises(CallFailedError):
            client.complete(PONG, max_tokens=16)
        assert client._core.guard.spent_today() == 0.0


def test_a_billed_failure_can_trip_the_daily_cap_before_the_retry():
    # Worst case of one call ≈ $6.2e-6; the billed 500 (≈ $1.1e-6) leaves no room under
    # $7e-6 for the retry's worst case, which is refused before it is sent.
    caps = CostCaps(max_tokens_per_call=None, max_cost_per_day_usd=0.000007)
    handler = _failing(500, SERVER_ERROR)
    with client_with(handler, caps=caps) as client, pytest.raises(BudgetExceededError) as caught:
        client.complete(PONG, max_tokens=16)
    assert caught.value.failure.code == "daily_cost_cap"
    assert len(handler.requests) == 1
