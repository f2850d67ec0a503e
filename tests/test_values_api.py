"""The values of a call outside the wire (the Exchange and its parts, the client's results and
plan steps, the gateway's parsed request) are frozen, keyword-only ``msgspec.Struct`` types
(``value_checks``); the leaf ones are not tracked by the cyclic garbage collector."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from chatcontract.client import ChatResult, StreamDelta, ToolCallDelta
from chatcontract.client._core import PreparedCall
from chatcontract.client._plan import AttemptOutcome, Fail, Finish, Send, Wait
from chatcontract.exchange import Exchange, RequestFacts, ResponseFacts, Timings
from chatcontract.gateway.request import GatewayRequest
from chatcontract.wire import Usage
from value_checks import check_value

_USAGE = Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)
_REQUEST = RequestFacts(method="POST", url="http://127.0.0.1/v1/chat/completions")
_EXCHANGE = Exchange(request=_REQUEST, response=None, timings=Timings(), started_at=1.0)
_RESULT = ChatResult(
    content="hi",
    reasoning=None,
    refusal=None,
    tool_calls=(),
    finish_reason="stop",
    usage=_USAGE,
    model="m",
    route="primary",
    requested_model="m",
    attempts=(_EXCHANGE,),
)
_PLACEHOLDER: Any = "a route"  # (no type check on construction: a placeholder that pickles equal)

#: One value of each class, built with its keyword-only constructor.
VALUES: dict[str, Any] = {
    "RequestFacts": _REQUEST,
    "ResponseFacts": ResponseFacts(status=200, usage=_USAGE, request_ids={"x-request-id": "r"}),
    "Timings": Timings(ttfb_ms=1.5, total_ms=2.0),
    "Exchange": _EXCHANGE,
    "ChatResult": _RESULT,
    "StreamDelta": StreamDelta(content="h", tool_calls=(ToolCallDelta(index=0, name="f"),)),
    "ToolCallDelta": ToolCallDelta(index=0, arguments="{"),
    "Send": Send(route=_PLACEHOLDER, attempt=1, route_attempt=1, budget_s=1.0),
    "Wait": Wait(seconds=0.5),
    "Finish": Finish(result=_RESULT),
    "Fail": Fail(error=_PLACEHOLDER),
    "AttemptOutcome": AttemptOutcome(exchange=_EXCHANGE, delivered=True),
    "PreparedCall": PreparedCall(
        plan=_PLACEHOLDER, params={}, messages=(), headers={}, stream=False, include_usage=False
    ),
    "GatewayRequest": GatewayRequest(
        routes=(), messages=[], params={}, stream=False, client_usage=False, deadline_s=None
    ),
}


@pytest.mark.parametrize("name", VALUES)
def test_a_value_is_a_frozen_keyword_only_struct(name):
    check_value(VALUES[name])


@pytest.mark.parametrize(
    "name", ["RequestFacts", "Timings", "StreamDelta", "ToolCallDelta", "Wait"]
)
def test_leaf_values_are_not_tracked_by_the_collector(name):
    assert not gc.is_tracked(VALUES[name])


def test_a_value_holding_a_container_is_tracked():
    # A dict could be part of a reference cycle: the collector must see the value holding it.
    assert gc.is_tracked(VALUES["ResponseFacts"])


def test_defaults_are_new_containers_per_value():
    first, second = (
        PreparedCall(
            plan=_PLACEHOLDER, params={}, messages=(), headers={}, stream=False, include_usage=False
        )
        for _ in range(2)
    )
    assert first.encoded == {} and first.encoded is not second.encoded
    assert ResponseFacts(status=200).request_ids is not ResponseFacts(status=200).request_ids
