"""Reading a chat request: routes named by model or route, fallbacks, the deadline header."""

from __future__ import annotations

import dataclasses
import json

import pytest
from gateway_helpers import BACKUP_MODEL, PROMPT, contract_for, env_for

from chatcontract.client._routes import build_routes
from chatcontract.gateway.errors import GatewayError
from chatcontract.gateway.request import (
    GatewayRequest,
    RouteTable,
    parse_deadline,
    parse_request,
)


@pytest.fixture
def table() -> RouteTable:
    contract = contract_for("http://127.0.0.1:9/v1", backup_url="http://127.0.0.1:10/v1")
    return RouteTable(build_routes(contract, model=None, environ=env_for("k1", "k2")))


def _read(table: RouteTable, deadline: str | None = None, **fields):
    return parse_request(
        json.dumps({"messages": PROMPT, **fields}).encode(), table, deadline=deadline
    )


@pytest.mark.parametrize(
    ("fields", "routes"),
    [
        pytest.param({}, ["primary", "backup"], id="no-model-primary-first"),
        pytest.param({"model": "gpt-4.1-nano"}, ["primary", "backup"], id="primary-model"),
        pytest.param({"model": BACKUP_MODEL}, ["backup", "primary"], id="backup-model"),
        pytest.param({"model": "backup"}, ["backup", "primary"], id="route-name"),
        pytest.param({"fallbacks": []}, ["primary"], id="no-fallbacks"),
        pytest.param({"fallbacks": ["backup", "primary"]}, ["primary", "backup"], id="deduped"),
    ],
)
def test_the_calls_routes_follow_model_and_fallbacks(table, fields, routes):
    assert [route.name for route in _read(table, **fields).routes] == routes


def test_the_gateways_own_fields_never_reach_the_params(table):
    request = _read(table, model="backup", fallbacks=[], temperature=0.2, tools=[{"x": 1}])
    assert request.params == {"temperature": 0.2, "tools": [{"x": 1}]}


@pytest.mark.parametrize(
    ("options", "client_usage"),
    [
        pytest.param(None, False, id="none"),
        pytest.param({"include_usage": False}, False, id="false"),
        pytest.param({"include_usage": True}, True, id="true"),
    ],
)
def test_a_stream_always_asks_for_usage_upstream(table, options, client_usage):
    fields = {"stream": True} if options is None else {"stream": True, "stream_options": options}
    request = _read(table, **fields)
    assert request.client_usage is client_usage
    assert request.params["stream_options"]["include_usage"] is True


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, None), ("100", 0.1), ("30000", 30.0), (" 600000 ", 600.0)],
    ids=["absent", "minimum", "typical", "maximum"],
)
def test_the_deadline_header_in_range_is_read(value, seconds):
    assert parse_deadline(value) == seconds


@pytest.mark.parametrize("value", ["", "99", "600001", "-5", "1.5", "30s", "１００"])
def test_a_deadline_out_of_range_or_not_whole_milliseconds_is_refused(value):
    with pytest.raises(GatewayError) as caught:
        parse_deadline(value)
    assert caught.value.status == 400 and caught.value.code == "invalid_deadline"


def test_models_are_listed_once_each_in_route_order(table):
    assert table.models == ("gpt-4.1-nano", BACKUP_MODEL)


def test_a_deadline_of_thousands_of_digits_is_refused_not_crashed():
    with pytest.raises(GatewayError):
        parse_deadline("9" * 5000)


USAGE = {"include_usage": True}


@pytest.mark.parametrize(
    ("fields", "as_is"),
    [
        pytest.param({"model": "gpt-4.1-nano"}, "gpt-4.1-nano", id="model-named"),
        pytest.param({"model": BACKUP_MODEL, "temperature": 0}, BACKUP_MODEL, id="with-params"),
        pytest.param(
            {"model": "gpt-4.1-nano", "stream": True, "stream_options": USAGE},
            "gpt-4.1-nano",
            id="stream-asking-usage",
        ),
        pytest.param({"model": "backup"}, "backup", id="route-name-kept-as-written"),
        pytest.param({}, None, id="no-model"),
        pytest.param({"model": "gpt-4.1-nano", "fallbacks": []}, None, id="fallbacks"),
        pytest.param({"model": "gpt-4.1-nano", "stream": False}, None, id="stream-false"),
        pytest.param({"model": "gpt-4.1-nano", "stream": None}, None, id="stream-null"),
        pytest.param({"model": "gpt-4.1-nano", "stream": True}, None, id="stream-no-usage"),
        pytest.param(
            {"model": "gpt-4.1-nano", "stream": True, "stream_options": {"include_usage": False}},
            None,
            id="stream-usage-false",
        ),
    ],
)
def test_a_body_needing_no_change_is_marked_for_its_model(table, fields, as_is):
    assert _read(table, **fields).as_is_model == as_is


def test_a_body_naming_model_twice_is_encoded_again(table):
    body = b'{"model": "gpt-4.1-nano", "messages": [], "model": "gpt-4o-mini"}'
    request = parse_request(body, table, deadline=None)
    assert request.routes[0].name == "backup"
    assert request.as_is_model is None


_ONCE = b'"model": "gpt-4.1-nano", "messages": [], "stream": true, '


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b'{"mod\\u0065l": "gpt-4o-mini", "messages": [], "model": "gpt-4.1-nano"}',
            id="model-repeated-through-an-escape",
        ),
        pytest.param(
            b'{"model": "gpt-4.1-nano", "stream": false, "messages": [], "stream": true, '
            b'"stream_options": {"include_usage": true}}',
            id="stream-repeated",
        ),
        pytest.param(
            b"{" + _ONCE + b'"stream_options": {"include_usage": false}, '
            b'"stream_options": {"include_usage": true}}',
            id="stream-options-repeated",
        ),
        pytest.param(
            b"{" + _ONCE + b'"stream_options": {"include_usage": false, "include_usage": true}}',
            id="include-usage-repeated",
        ),
        pytest.param(
            b"{" + _ONCE + b'"stream_options": {"include_us\\u0061ge": true}}',
            id="an-escape-anywhere",
        ),
    ],
)
def test_a_body_repeating_a_field_the_gateway_decides_on_is_encoded_again(table, body):
    # An upstream that keeps a repeated key's first value would otherwise read another model,
    # or no stream, or no usage, than the gateway routed and accounted for.
    request = parse_request(body, table, deadline=None)
    assert request.as_is_model is None
    assert request.routes[0].name == "primary"


def test_a_body_whose_text_only_mentions_the_field_names_may_still_go_as_is(table):
    body = (
        b'{"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "say stream"}], '
        b'"stream": true, "stream_options": {"include_usage": true}}'
    )
    assert parse_request(body, table, deadline=None).as_is_model == "gpt-4.1-nano"


def test_a_read_request_holds_each_field_where_its_constructor_puts_it(table):
    request = _read(
        table, "1500", model="gpt-4.1-nano", stream=True, stream_options=USAGE, temperature=0
    )
    assert type(request) is GatewayRequest
    assert request == GatewayRequest(
        routes=request.routes,
        messages=PROMPT,
        params={"temperature": 0, "stream_options": USAGE},
        stream=True,
        client_usage=True,
        deadline_s=1.5,
        as_is_model="gpt-4.1-nano",
    )
    assert [route.name for route in request.routes] == ["primary", "backup"]
    with pytest.raises(AttributeError, match="immutable"):
        request.stream = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("model", "names"),
    [
        pytest.param(None, ["primary", "backup", "third"], id="none"),
        pytest.param("backup", ["backup", "primary", "third"], id="middle"),
        pytest.param("third-model", ["third", "primary", "backup"], id="last-by-model"),
    ],
)
def test_without_fallbacks_the_named_route_goes_first_then_the_others_in_order(table, model, names):
    primary, backup = table.routes
    third = dataclasses.replace(backup, name="third", model="third-model")
    routes = RouteTable([primary, backup, third]).for_call(model, None)
    assert [route.name for route in routes] == names


def test_the_params_keep_the_clients_order_without_the_gateways_own_fields(table):
    body = b'{"top_p": 1, "model": "backup", "stream": false, "messages": [], "n": 1, "seed": 2}'
    request = parse_request(body, table, deadline=None)
    assert list(request.params.items()) == [("top_p", 1), ("n", 1), ("seed", 2)]
