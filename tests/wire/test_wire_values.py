"""The wire's values are frozen, keyword-only ``msgspec.Struct`` types (``value_checks``), and
the leaf ones (no field that could refer back to them) are not tracked by the cyclic garbage
collector: one of each is built per chunk or per call."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from chatcontract.wire import (
    Completion,
    CompletionResult,
    SSEEvent,
    StreamResult,
    StreamVerdict,
    ToolCall,
    Usage,
)
from value_checks import check_value

USAGE = Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)
COMPLETION = Completion(
    id="c1",
    model="m",
    created=1,
    system_fingerprint=None,
    content="hi",
    refusal=None,
    reasoning_content=None,
    tool_calls=(),
    finish_reason="stop",
    usage=USAGE,
    choice_count=1,
)

#: One value of each class, built with its keyword-only constructor.
VALUES: dict[str, Any] = {
    "ToolCall": ToolCall(index=0, id="t", type="function", name="f", arguments="{}"),
    "Usage": USAGE,
    "Completion": COMPLETION,
    "CompletionResult": CompletionResult(completion=COMPLETION),
    "StreamResult": StreamResult(
        verdict=StreamVerdict.COMPLETE,
        content="hi",
        reasoning_content="",
        refusal="",
        tool_calls=(),
        finish_reason="stop",
        usage=None,
        model="m",
        id="c1",
        created=1,
        system_fingerprint=None,
        chunk_count=2,
        ping_count=0,
        first_token_at=None,
        done_seen=True,
        missing_usage=False,
        error=None,
        violations=(),
    ),
    "SSEEvent": SSEEvent(data="{}", id="7"),
}


@pytest.mark.parametrize("name", VALUES)
def test_a_wire_value_is_a_frozen_keyword_only_struct(name):
    check_value(VALUES[name])


@pytest.mark.parametrize("name", ["ToolCall", "Usage", "SSEEvent"])
def test_leaf_wire_values_are_not_tracked_by_the_collector(name):
    assert not gc.is_tracked(VALUES[name])


def test_usage_details_are_a_new_dict_per_value():
    assert Usage().details == {} and Usage().details is not Usage().details
