import json

import httpx2
import pytest
from client_helpers import PONG, RecordingSink, contract_for, env_for, trail

from chatcontract.client import BudgetExceededError, ChatClient, KillSwitchError
from chatcontract.contract import CostCaps
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
