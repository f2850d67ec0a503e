"""Validation order and wording per flavor (pure: no app, no I/O)."""

from __future__ import annotations

import orjson
import pytest

from chatcontract.simulator import COMETAPI, OPENAI
from chatcontract.simulator.flavors import Situation
from chatcontract.simulator.validation import ChatRequest, Problem, parse_chat_request


def parse(flavor, payload):
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return parse_chat_request(flavor, raw)


MSGS = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("payload", "situation"),
    [
        (b"{not json", Situation.MALFORMED_JSON),
        (b"[1, 2]", Situation.MALFORMED_JSON),
        ({"model": 5, "messages": MSGS}, Situation.MALFORMED_JSON),
        ({"messages": MSGS}, Situation.MISSING_MODEL),
        ({"model": "", "messages": MSGS}, Situation.MISSING_MODEL),
        ({"model": "nope-1", "messages": MSGS}, Situation.UNKNOWN_MODEL),
        ({"model": "gpt-4o"}, Situation.MISSING_MESSAGES),
        ({"model": "gpt-4o", "messages": []}, Situation.EMPTY_MESSAGES),
        ({"model": "gpt-4o", "messages": "hi"}, Situation.INVALID_FIELD),
        ({"model": "gpt-4o", "messages": MSGS, "max_tokens": "abc"}, Situation.INVALID_FIELD),
        ({"model": "gpt-4o", "messages": MSGS, "max_tokens": -1}, Situation.INVALID_FIELD),
        ({"model": "gpt-4o", "messages": ["hi"]}, Situation.INVALID_FIELD),
        ({"model": "gpt-4o", "messages": MSGS, "stream": "yes"}, Situation.INVALID_FIELD),
    ],
    ids=[
        "broken-json", "not-an-object", "model-not-string", "no-model", "empty-model",
        "unknown-model", "no-messages", "empty-messages", "messages-string", "max-tokens-string",
        "max-tokens-negative", "message-not-object", "stream-string",
    ],
)  # fmt: skip
def test_cometapi_problems(payload, situation):
    problem = parse(COMETAPI, payload)
    assert isinstance(problem, Problem)
    assert problem.situation is situation


def test_cometapi_checks_the_model_before_field_types():
    # the distributor (model) runs before the relay's typed decode
    problem = parse(COMETAPI, {"model": "nope-1", "messages": "hi"})
    assert problem.situation is Situation.UNKNOWN_MODEL


def test_cometapi_type_errors_quote_go_decoding():
    problem = parse(COMETAPI, {"model": "gpt-4o", "messages": MSGS, "max_tokens": "abc"})
    assert problem.params["detail"] == (
        "json: cannot unmarshal string into Go struct field "
        "GeneralOpenAIRequest.max_tokens of type uint"
    )


def test_openai_checks_the_model_last():
    problem = parse(OPENAI, {"model": "nope-1"})
    assert problem.situation is Situation.MISSING_MESSAGES


@pytest.mark.parametrize(
    ("payload", "situation", "param"),
    [
        (
            {"model": "gpt-4o", "messages": MSGS, "max_tokens": "abc"},
            Situation.INVALID_FIELD,
            "max_tokens",
        ),
        (
            {"model": "gpt-4o", "messages": MSGS, "max_tokens": 0},
            Situation.BELOW_MINIMUM,
            "max_tokens",
        ),
        ({"model": "gpt-4o", "messages": [1]}, Situation.INVALID_FIELD, "messages[0]"),
        ({"model": 3, "messages": MSGS}, Situation.INVALID_FIELD, "model"),
    ],
    ids=["type", "range", "message-element", "model-type"],
)
def test_openai_problems_name_the_parameter(payload, situation, param):
    problem = parse(OPENAI, payload)
    assert problem.situation is situation
    assert problem.params["field"] == param


def test_a_valid_request_is_parsed():
    request = parse(
        COMETAPI,
        {
            "model": "gpt-4o-mini",
            "messages": MSGS,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": 9,
            "max_completion_tokens": 4,
            "unknown_field": {"ignored": True},
        },
    )
    assert request == ChatRequest(
        model="gpt-4o-mini", messages=tuple(MSGS), stream=True, include_usage=True, max_tokens=4
    )


def test_cometapi_treats_max_tokens_zero_as_unset():
    request = parse(COMETAPI, {"model": "gpt-4o", "messages": MSGS, "max_tokens": 0})
    assert isinstance(request, ChatRequest)
    assert request.max_tokens is None
