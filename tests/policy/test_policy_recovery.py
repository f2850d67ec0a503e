"""Stream recovery (continue / restart / raise) and run-time completeness, row by row."""

import dataclasses

import pytest

from chatcontract.failures import make_failure
from chatcontract.policy import (
    TOLERATED_CODES,
    UNRECOVERABLE,
    Recovery,
    continuation_request,
    is_complete,
    recover_stream,
    tolerated,
)

REQUEST = {
    "model": "gpt-4.1-nano",
    "messages": [{"role": "user", "content": "Count to five"}],
    "stream": True,
    "max_tokens": 64,
}
CUT = make_failure(kind="parser", category="contract", code="stream_cut", message="cut")


def recover(**overrides):
    arguments = {
        "failure": CUT,
        "delivered": "one, two",
        "tool_call_started": False,
        "continuation": "assistant_prefix",
        "accepts_restart": False,
        "request": REQUEST,
    } | overrides
    return recover_stream(**arguments)


def test_assistant_prefix_appends_the_partial_answer_and_leaves_the_request_alone():
    body = continuation_request(REQUEST, "one, two", "assistant_prefix")
    assert body["messages"] == [
        {"role": "user", "content": "Count to five"},
        {"role": "assistant", "content": "one, two"},
    ]
    assert "continue_final_message" not in body
    assert (body["model"], body["stream"], body["max_tokens"]) == ("gpt-4.1-nano", True, 64)
    assert len(REQUEST["messages"]) == 1


def test_continue_final_message_also_sets_the_flags_the_server_needs():
    body = continuation_request(REQUEST, "one", "continue_final_message")
    assert body["messages"][-1] == {"role": "assistant", "content": "one"}
    assert (body["continue_final_message"], body["add_generation_prompt"]) == (True, False)


@pytest.mark.parametrize(
    ("mode", "partial", "match"),
    [
        ("none", "x", "continuation needs"),
        ("sideways", "x", "continuation needs"),
        ("assistant_prefix", "", "partial answer"),
    ],
    ids=["none", "unknown", "empty-partial"],
)
def test_a_continuation_request_needs_a_mode_and_a_partial_answer(mode, partial, match):
    with pytest.raises(ValueError, match=match):
        continuation_request(REQUEST, partial, mode)


@pytest.mark.parametrize(
    ("category", "code"),
    [
        ("contract", "stream_cut"),
        ("network", "stream_dropped"),
        ("timeout", "stream_stalled"),
        ("contract", "malformed_chunk"),
        ("upstream", "inband_error"),
        ("contract", "stream_truncated"),
    ],
    ids=["cut", "dropped", "stall", "malformed", "inband-error", "early-close"],
)
def test_a_broken_stream_with_text_continues_where_the_route_declares_how(category, code):
    failure = make_failure(kind="parser", category=category, code=code, message="m")
    recovery = recover(failure=failure)
    assert recovery.action == "continue"
    assert recovery.body["messages"][-1] == {"role": "assistant", "content": "one, two"}
    assert recovery.failure is failure
    assert "continue after 8 characters (assistant_prefix)" in recovery.reason


def test_nothing_delivered_is_a_seamless_restart_even_without_on_restart():
    recovery = recover(delivered="", accepts_restart=False)
    assert (recovery.action, recovery.body) == ("restart", None)
    assert "nothing was delivered" in recovery.reason


@pytest.mark.parametrize("category", sorted(UNRECOVERABLE))
def test_a_refusal_of_the_request_itself_is_raised(category):
    failure = make_failure(kind="api_error", category=category, code="x", message="m")
    recovery = recover(failure=failure, accepts_restart=True)
    assert recovery.action == "raise"
    assert "request itself is refused" in recovery.reason


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"tool_call_started": True}, "partly streamed tool call is not continued"),
        ({"continuation": "none"}, "route declares no continuation"),
        ({"continuation_refused": True}, "continuation was refused"),
        ({"delivered": "", "tool_call_started": True}, "partly streamed tool call"),
    ],
    ids=["tool-call", "no-continuation", "refused", "tool-call-without-text"],
)
def test_when_it_cannot_continue_it_restarts_only_for_a_caller_that_accepts(overrides, why):
    restarted = recover(accepts_restart=True, **overrides)
    assert (restarted.action, restarted.body) == ("restart", None)
    assert why in restarted.reason
    raised = recover(accepts_restart=False, **overrides)
    assert raised.action == "raise"
    assert why in raised.reason and "takes no restart" in raised.reason


def test_a_refused_continuation_keeps_the_original_failure_reported():
    recovery = recover(continuation_refused=True, accepts_restart=True)
    assert recovery.failure is CUT


def test_a_recovery_carries_a_body_exactly_when_it_continues():
    with pytest.raises(ValueError, match="body"):
        Recovery(action="continue", reason="r", failure=CUT)
    with pytest.raises(ValueError, match="body"):
        Recovery(action="raise", reason="r", failure=CUT, body={})


@pytest.mark.parametrize(
    ("finish_reason", "content", "tool_calls", "expected"),
    [
        ("stop", "full answer", False, True),
        ("length", "half", False, True),
        ("tool_calls", None, True, True),
        (None, "full answer", False, False),
        ("stop", "", False, False),
        ("content_filter", None, False, False),
        (None, None, True, False),
    ],
    ids=["stop", "length", "tool-call", "no-finish-reason", "empty", "filtered", "tool-no-finish"],
)
def test_an_answer_is_complete_with_a_finish_reason_and_something_usable(
    finish_reason, content, tool_calls, expected
):
    assert is_complete(finish_reason=finish_reason, content=content, tool_calls=tool_calls) is (
        expected
    )


@pytest.mark.parametrize("code", sorted(TOLERATED_CODES))
def test_complete_but_not_as_contracted_is_a_violation_not_a_failure(code):
    failure = make_failure(kind="parser", category="contract", code=code, message="m")
    assert tolerated(failure, finish_reason="stop", content="answer", tool_calls=False)
    assert not tolerated(failure, finish_reason=None, content="answer", tool_calls=False)
    assert not tolerated(failure, finish_reason="stop", content="", tool_calls=False)


@pytest.mark.parametrize("code", ["stream_cut", "empty_content", "malformed_chunk", "reset"])
def test_a_broken_or_empty_answer_is_never_tolerated(code):
    failure = make_failure(kind="parser", category="contract", code=code, message="m")
    assert not tolerated(failure, finish_reason="stop", content="answer", tool_calls=False)


def test_a_recovery_is_a_frozen_keyword_only_value():
    recovery = recover()
    with pytest.raises(dataclasses.FrozenInstanceError):
        recovery.action = "raise"
    with pytest.raises(TypeError):
        Recovery("raise", "r", CUT)
    assert not hasattr(recovery, "__dict__")


def test_continuation_flags_are_not_shared_between_requests():
    first = continuation_request(REQUEST, "a", "continue_final_message")
    first["continue_final_message"] = False
    assert continuation_request(REQUEST, "a", "continue_final_message")["continue_final_message"]
