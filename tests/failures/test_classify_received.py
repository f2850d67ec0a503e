"""``classify_received``: ``classify_response`` for a caller holding the content type already.

It gives the same answer as ``classify_response`` given the same headers; a 2xx is an HTML
page when its content type says so or its first bytes (after leading whitespace, within the
first 64) open a tag, which a body opening with ``{`` never does.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.contract import load_preset
from chatcontract.failures import classify_received, classify_response
from chatcontract.wire import parse_completion

COMET = load_preset("cometapi")
COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
)
EMPTY_ANSWER = COMPLETION.replace(b'"hi"', b'""')
HTML = b"<!DOCTYPE html><html><head><title>console</title></head></html>"
BODIES = [
    COMPLETION,
    EMPTY_ANSWER,
    b" \n" + COMPLETION,
    HTML,
    b" \t\r\n" + HTML,
    b" " * 64 + HTML,
    b'{"error": {"message": "busy", "code": "model_not_found"}}',
    b"",
    b"{",
    b"plain text",
    b"[]",
]
CONTENT_TYPES = [None, "application/json", "text/html", "Text/HTML; charset=utf-8", "text/plain"]


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from([200, 201, 299, 400, 401, 429, 500, 503]),
    body=st.one_of(st.sampled_from(BODIES), st.binary(max_size=80)),
    content_type=st.sampled_from(CONTENT_TYPES),
    request_id=st.sampled_from([None, "req-1"]),
    parsed=st.booleans(),
)
def test_the_answer_is_classify_responses(status, body, content_type, request_id, parsed):
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if request_id is not None:
        headers["x-request-id"] = request_id
    given_parse = parse_completion(body, contract=COMET) if parsed else None
    expected = classify_response(status, headers, body, contract=COMET, parsed=given_parse)
    found = classify_received(
        status, headers, content_type, body, contract=COMET, parsed=given_parse
    )
    assert found == expected


@pytest.mark.parametrize(
    ("content_type", "body", "kind"),
    [
        ("application/json", COMPLETION, None),
        (None, COMPLETION, None),
        ("application/json", b" \n" + COMPLETION, None),
        ("text/html", COMPLETION, "http"),
        ("Text/HTML; charset=utf-8", COMPLETION, "http"),
        ("application/json", HTML, "http"),
        (None, b" \t\r\n" + HTML, "http"),
        (None, b" " * 64 + HTML, "parser"),
        (None, b" " * 63 + HTML, "http"),
        ("application/json", b"{<html>", "parser"),
        ("application/json", EMPTY_ANSWER, "semantic"),
    ],
    ids=[
        "json", "no-content-type", "json-after-whitespace", "html-content-type",
        "html-content-type-in-capitals", "html-body", "html-after-whitespace",
        "html-past-64-bytes", "html-within-64-bytes", "brace-then-tag", "empty-answer",
    ],
)  # fmt: skip
def test_a_2xx_is_an_html_page_by_its_content_type_or_its_first_bytes(content_type, body, kind):
    failure = classify_received(200, {}, content_type, body, contract=COMET)
    assert (None if failure is None else failure.kind) == kind


def test_the_content_type_given_is_the_one_read():
    # The headers hold none: the content type passed decides.
    failure = classify_received(200, {}, "text/html", COMPLETION, contract=COMET)
    assert failure is not None
    assert failure.code == "html_on_api_path"


def test_a_semantic_failure_takes_the_request_id_of_the_headers():
    failure = classify_received(
        200, {"x-request-id": "req-9"}, "application/json", EMPTY_ANSWER, contract=COMET
    )
    assert failure is not None
    assert (failure.code, failure.request_id) == ("empty_content", "req-9")


def test_without_a_contract_the_default_one_classifies():
    failure = classify_received(503, {}, None, b"", contract=None)
    assert failure == classify_response(503, {}, b"")


def test_the_options_are_keyword_only():
    with pytest.raises(TypeError):
        classify_received(200, {}, None, COMPLETION, COMET)
    assert classify_received(200, {}, None, COMPLETION, contract=COMET) is None
