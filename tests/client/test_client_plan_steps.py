"""``PlanSteps``: the one loop both client shells run over the plan's steps. The plan resumes
after a ``Wait`` only once the shell has slept, moves after a ``Send`` only on the attempt's
reported outcome, and the iteration ends with the result or raises the call's error."""

from __future__ import annotations

from typing import Any

import pytest

from chatcontract.client._core import PlanSteps
from chatcontract.client._plan import Fail, Finish, Send, Wait
from chatcontract.client._routes import Route
from chatcontract.client.errors import NonRetryableError
from chatcontract.failures import make_failure

ROUTE = Route(name="primary", model="m", url="http://x/v1/chat/completions",
              base_url="http://x/v1", auth_header="Authorization", auth_value="Bearer k",
              secret="k")  # fmt: skip
SEND = Send(route=ROUTE, attempt=1, route_attempt=1, budget_s=1.0)
WAIT = Wait(seconds=0.5)


class ScriptedPlan:
    """A plan whose ``resume``/``on_outcome`` hand out scripted steps, recording the calls."""

    def __init__(self, *steps: Any) -> None:
        self._steps = list(steps)
        self.calls: list[str] = []

    def resume(self) -> Any:
        self.calls.append("resume")
        return self._steps.pop(0)

    def on_outcome(self, outcome: Any) -> Any:
        self.calls.append(f"outcome:{outcome}")
        return self._steps.pop(0)


def test_the_plan_resumes_only_when_the_shell_asks_for_the_step_after_a_wait():
    finish = Finish(result="answer")
    plan = ScriptedPlan(SEND, finish)
    steps = PlanSteps(plan, WAIT)

    assert next(steps) is WAIT
    assert plan.calls == []  # the shell sleeps now: the retry is not planned before
    assert next(steps) is SEND
    assert plan.calls == ["resume"]
    steps.report("ok")
    with pytest.raises(StopIteration):
        next(steps)
    assert plan.calls == ["resume", "outcome:ok"]
    assert steps.result == "answer"


def test_the_next_step_after_a_send_needs_the_attempts_outcome():
    steps = PlanSteps(ScriptedPlan(), SEND)

    assert next(steps) is SEND
    with pytest.raises(RuntimeError, match="report"):
        next(steps)


def test_a_failed_call_raises_its_error_from_the_loop():
    error = NonRetryableError(
        make_failure(
            kind="api_error", category="validation", code="invalid_request", message="bad field"
        )
    )
    steps = PlanSteps(ScriptedPlan(Fail(error=error)), SEND)
    next(steps)
    steps.report("failed")

    with pytest.raises(NonRetryableError) as raised:
        next(steps)
    assert raised.value is error


def test_the_result_is_not_there_before_the_call_finished():
    steps = PlanSteps(ScriptedPlan(), SEND)

    with pytest.raises(RuntimeError, match="not finished"):
        _ = steps.result


def test_a_new_calls_plan_starts_afresh_after_another_fell_back() -> None:
    # A plan's starting state (route index, attempt counts, recovery state) is the class's;
    # what one call changes is its own.
    import httpx2
    from client_helpers import contract_for, env_for, trail

    from chatcontract.client import ChatClient

    def upstream(request: httpx2.Request) -> httpx2.Response:
        if request.url.host == "backup.test":
            served.append(request)
        elif not served:  # the primary fails until the backup has answered once
            return httpx2.Response(503, json={"error": {"message": "busy", "type": "x"}})
        answer = {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hi"},
                 "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }  # fmt: skip
        return httpx2.Response(200, json=answer)

    served: list[httpx2.Request] = []
    contract = contract_for("http://primary.test/v1", fallback_url="http://backup.test/v1")
    client = ChatClient(
        contract, environ=env_for("k1", "k2"), transport=httpx2.MockTransport(upstream)
    )
    first = client.complete([{"role": "user", "content": "x"}])
    second = client.complete([{"role": "user", "content": "x"}])
    assert [a[0] for a in trail(first.attempts)][-1] == "backup"
    assert trail(second.attempts) == [("primary", 1, None)]
    assert (second.route, second.decisions) == ("primary", ())
