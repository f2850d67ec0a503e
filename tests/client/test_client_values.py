"""The values a call builds on its hot path (frozen ``msgspec.Struct`` types) hold each field
where their constructors put it: same class, frozen, ``replace`` and pickle as usual."""

from __future__ import annotations

import pickle

import pytest
from client_helpers import LONG, PONG, RecordingSink, contract_for, env_for
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from chatcontract.client import ChatClient, ChatResult
from chatcontract.client._core import PreparedCall
from chatcontract.client._plan import AttemptOutcome, Finish, Send, attempt_outcome
from chatcontract.wire import Completion, StreamResult, StreamVerdict, ToolCall, Usage


def _client(server, **kwargs):
    contract = contract_for(server.base_url)
    return ChatClient.from_contract(contract, environ=env_for(server.api_key), **kwargs)


def _is_frozen_value(value: object, cls: type) -> None:
    assert type(value) is cls
    name = cls.__struct_fields__[0]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="immutable"):
        setattr(value, name, None)
    assert pickle.loads(pickle.dumps(value)) == value


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_a_calls_result_holds_each_field_where_its_constructor_puts_it(sims, stream):
    sink = RecordingSink()
    with _client(sims(), telemetry_sinks=[sink]) as client:
        if stream:
            with client.stream(LONG, max_tokens=64) as deltas:
                text = "".join(delta.content for delta in deltas)
            result = deltas.result
        else:
            result = client.complete(PONG, max_tokens=16)
            text = "pong"
    [exchange] = sink.exchanges
    built = ChatResult(
        content=text,
        reasoning=None,
        refusal=None,
        tool_calls=(),
        finish_reason="stop",
        usage=result.usage,
        model=exchange.response.model,
        route="primary",
        requested_model="gpt-4.1-nano",
        attempts=(exchange,),
        decisions=(),
        cost_usd=result.cost_usd,
        violations=(),
        secrets=result.secrets,
    )
    assert result == built and result.outcome == "success" and result.usage is not None
    assert result.cost_usd is not None and result.cost_usd > 0
    _is_frozen_value(result, ChatResult)
    assert replace(result, route="backup").route == "backup"
    assert replace(result, secrets=("another",)) == result  # not compared
    nan = replace(result, cost_usd=float("nan"))
    assert nan == nan and nan != result  # compared as a tuple of its fields, as before
    assert "another" not in repr(replace(result, secrets=("another",)))


def test_an_attempt_outcome_holds_each_value_where_its_constructor_puts_it():
    exchange, answer, partial = object(), object(), object()
    made = attempt_outcome(exchange, answer, partial, True)  # type: ignore[arg-type]
    assert made == AttemptOutcome(
        exchange=exchange,  # type: ignore[arg-type]
        answer=answer,  # type: ignore[arg-type]
        partial=partial,  # type: ignore[arg-type]
        delivered=True,
    )
    assert type(made) is AttemptOutcome
    with pytest.raises(AttributeError, match="immutable"):
        made.delivered = False  # type: ignore[misc]


def test_a_prepared_call_and_its_first_step_hold_each_value_in_place(sims):
    with _client(sims()) as client:
        call = client._core.prepare(
            PONG, {"max_tokens": 16}, stream=True, deadline_s=7.5, headers={"x-a": "1"}
        )
        other = client._core.prepare(PONG, {}, stream=False, deadline_s=None, headers=None)
        step = call.plan.start()
    assert type(call) is PreparedCall and type(step) is Send
    assert call == PreparedCall(
        plan=call.plan,
        params={"max_tokens": 16, "stream": True, "stream_options": {"include_usage": True}},
        messages=tuple(PONG),
        headers={"x-a": "1"},
        stream=True,
        include_usage=True,
    )
    assert (other.stream, other.include_usage, other.headers) == (False, False, {})
    call.encoded["m"] = b"{}"
    assert other.encoded == {}  # each call its own memo
    assert 0 < step.budget_s <= 7.5
    assert step == Send(route=call.plan.route, attempt=1, route_attempt=1, budget_s=step.budget_s)
    with pytest.raises(AttributeError, match="immutable"):
        step.attempt = 2  # type: ignore[misc]


def test_a_finished_plan_step_holds_its_result(sims):
    with _client(sims()) as client:
        call = client._core.prepare(PONG, {}, stream=False, deadline_s=None, headers=None)
        step = call.plan.start()
        attempt = client._attempt(call, step)
        response = attempt.client.send(attempt.request)
        finish = call.plan.on_outcome(attempt.read(response.read(), None))
    assert type(finish) is Finish and finish == Finish(result=finish.result)
    assert finish.result.content == "pong"
    _is_frozen_value(finish, Finish)


_TOOL_CALL = ToolCall(index=0, id="t1", type="function", name="f", arguments="{}")


@settings(max_examples=200, deadline=None)
@given(
    content=st.sampled_from(["", "hi"]),
    refusal=st.sampled_from(["", "no"]),
    reasoning=st.sampled_from(["", "hmm"]),
    tools=st.sampled_from([(), (_TOOL_CALL,)]),
    chunks=st.integers(min_value=0, max_value=3),
    ids=st.sampled_from([None, "c1"]),
    usage=st.sampled_from([None, Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)]),
)
def test_a_streams_completion_is_the_one_its_frozen_class_builds(
    content, refusal, reasoning, tools, chunks, ids, usage
):
    result = StreamResult(
        verdict=StreamVerdict.COMPLETE,
        content=content,
        reasoning_content=reasoning,
        refusal=refusal,
        tool_calls=tools,
        finish_reason="stop" if chunks else None,
        usage=usage,
        model=ids and "m",
        id=ids,
        created=ids and 7,
        system_fingerprint=ids and "fp",
        chunk_count=chunks,
        ping_count=0,
        first_token_at=None,
        done_seen=True,
        missing_usage=False,
        error=None,
        violations=(),
    )
    made = result.as_completion()
    content = result.content
    assert made == Completion(
        id=result.id,
        model=result.model,
        created=result.created,
        system_fingerprint=result.system_fingerprint,
        content=content if content or not result.tool_calls else None,
        refusal=result.refusal or None,
        reasoning_content=result.reasoning_content or None,
        tool_calls=result.tool_calls,
        finish_reason=result.finish_reason,
        usage=result.usage,
        choice_count=1 if result.chunk_count else 0,
    )
    assert type(made) is Completion
    with pytest.raises(AttributeError, match="immutable"):
        made.content = "x"  # type: ignore[misc]
