"""Every row of classify's own tables, through a contract without rules and through the presets.

The presets have a rule for nearly every status, so the status and status-class fallbacks are
only reached by a contract that declares no rules: those rows are tested through one here.
"""

from dataclasses import replace

import pytest

from chatcontract.contract import ErrorRule, ErrorTable, load_preset
from chatcontract.failures import REQUEST_ID_HEADERS, classify, classify_error_body
from chatcontract.failures.classify import _parser_failure
from chatcontract.wire import ErrorBody, Violation, ViolationKind, parse_error_body

COMET = load_preset("cometapi")
OPENAI = load_preset("openai")
BARE = replace(COMET, errors=ErrorTable(rules=()))  # the cometapi preset without its rules

STATUS_ROWS = {
    401: ("auth", "unauthorized"),
    403: ("auth", "forbidden"),
    404: ("endpoint", "not_found"),
    405: ("endpoint", "method_not_allowed"),
    408: ("timeout", "request_timeout"),
    409: ("validation", "conflict"),
    413: ("validation", "request_too_large"),
    422: ("validation", "unprocessable"),
    429: ("rate_limit", "rate_limited"),
    502: ("upstream", "bad_gateway"),
    503: ("upstream", "unavailable"),
    504: ("upstream", "gateway_timeout"),
    524: ("upstream", "origin_timeout"),
}

CLASS_ROWS = {
    102: ("endpoint", "informational"),
    250: ("contract", "unexpected_success"),
    304: ("endpoint", "redirect"),
    418: ("validation", "client_error"),
    599: ("upstream", "server_error"),
}

RETRY = {
    "auth": "none",
    "endpoint": "none",
    "timeout": "retry",
    "validation": "none",
    "rate_limit": "retry",
    "upstream": "retry",
    "contract": "fallback",
}


def _empty(status):
    return classify_error_body(status, parse_error_body(b""), contract=BARE)


@pytest.mark.parametrize(("status", "row"), list(STATUS_ROWS.items()), ids=str)
def test_status_table_row_without_contract_rules(status, row):
    failure = classify(status, {}, b"", contract=BARE)
    assert (failure.kind, failure.category, failure.code) == ("http", *row)
    assert failure.retry == RETRY[row[0]]
    assert failure.message == f"HTTP {status} with an empty body"


@pytest.mark.parametrize(("status", "row"), list(CLASS_ROWS.items()), ids=str)
def test_status_class_row_without_contract_rules(status, row):
    failure = _empty(status)
    assert (failure.kind, failure.category, failure.code) == ("http", *row)
    assert failure.status == status


@pytest.mark.parametrize("status", [None, 600, 99], ids=["none", "600", "99"])
def test_a_status_outside_every_table_is_an_unexpected_status(status):
    failure = _empty(status)
    assert (failure.category, failure.code) == ("endpoint", "unexpected_status")


def test_the_status_table_wins_over_the_status_class():
    # 404 is in the 4xx class (validation) but the status row says endpoint.
    assert classify(404, {}, b"", contract=BARE).category == "endpoint"
    assert classify(400, {}, b"", contract=BARE).category == "validation"


@pytest.mark.parametrize(
    ("code", "expected"),
    [("quota_gone", "quota_gone"), ("", "rate_limited"), ("429", "rate_limited")],
    ids=["own-code", "empty-code", "status-as-code"],
)
def test_the_providers_code_names_the_failure_unless_it_only_repeats_the_status(code, expected):
    body = b'{"error":{"message":"slow down","type":"x","code":"%s"}}' % code.encode()
    failure = classify(429, {}, body, contract=BARE)
    assert (failure.kind, failure.category, failure.code) == ("api_error", "rate_limit", expected)


def test_an_in_band_error_without_rule_is_upstream_with_its_own_code():
    inband = classify(200, {}, b'{"error":{"message":"boom","code":"oops"}}', contract=BARE)
    assert (inband.kind, inband.category, inband.code) == ("api_error", "upstream", "oops")
    bare = classify(200, {}, b'{"error":{"message":"boom"}}', contract=BARE)
    assert (bare.kind, bare.category, bare.code) == ("api_error", "upstream", "inband_error")
    echoed = classify(200, {}, b'{"error":{"message":"boom","code":"200"}}', contract=BARE)
    assert echoed.code == "inband_error"


# -- rule matchers ---------------------------------------------------------------------


def _with_rules(*rules):
    return replace(COMET, errors=ErrorTable(rules=rules))


@pytest.mark.parametrize(
    ("error_type", "category"),
    [("insufficient_quota", "quota"), ("requests", "rate_limit"), (None, "rate_limit")],
    ids=["type-matches", "other-type", "no-type"],
)
def test_the_rules_type_filter(error_type, category):
    contract = _with_rules(
        ErrorRule(name="billing", category="quota", type="insufficient_quota"),
        ErrorRule(name="limited", category="rate_limit", status=(429,)),
    )
    type_part = f',"type":"{error_type}"' if error_type else ""
    body = f'{{"error":{{"message":"no"{type_part}}}}}'.encode()
    assert classify(429, {}, body, contract=contract).category == category


@pytest.mark.parametrize(
    ("body", "headers", "matched"),
    [
        (b'{"error":{"message":"m"}}', {}, "json"),
        (b"", {}, "empty"),
        (b"<html><title>t</title></html>", {"content-type": "text/html"}, "html"),
        (b"plain words", {}, "text"),
        (b"{not json", {}, "text"),
        (b'{"a":1}', {}, "text"),
    ],
    ids=["json", "empty", "html", "text", "invalid-json", "other-json"],
)
def test_the_rules_body_filter(body, headers, matched):
    rules = [
        ErrorRule(name=kind, category="upstream", status=(500,), body=kind)
        for kind in ("json", "empty", "html", "text")
    ]
    failure = classify(500, headers, body, contract=_with_rules(*rules))
    assert failure.code == matched


def test_every_matcher_of_a_rule_must_hold():
    rule = ErrorRule(
        name="all", category="quota", status=(402,), code="c", type="t", message="^pay"
    )
    contract = _with_rules(rule)

    def code_for(status, code, type_, message):
        body = f'{{"error":{{"message":"{message}","type":"{type_}","code":"{code}"}}}}'
        return classify(status, {}, body.encode(), contract=contract).category

    assert code_for(402, "c", "t", "pay up") == "quota"
    assert code_for(403, "c", "t", "pay up") == "auth"  # status differs
    assert code_for(402, "d", "t", "pay up") == "validation"  # code differs
    assert code_for(402, "c", "u", "pay up") == "validation"  # type differs
    assert code_for(402, "c", "t", "please pay") == "validation"  # message anchored
    assert code_for(402, "c", "t", "PAY up") == "quota"  # case-insensitive


def test_a_rule_with_an_empty_code_matches_a_missing_code():
    contract = _with_rules(ErrorRule(name="no_code", category="model", code=""))
    assert classify(400, {}, b'{"error":{"message":"m"}}', contract=contract).code == "no_code"
    other = classify(400, {}, b'{"error":{"message":"m","code":"x"}}', contract=contract)
    assert other.category == "validation"


# -- what a failure carries ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers", "message"),
    [
        (500, b"", {}, "HTTP 500 with an empty body"),
        (
            500,
            b"<html><head><title>Oops</title></head></html>",
            {"content-type": "text/html"},
            "HTTP 500 with an HTML page (title: Oops)",
        ),
        (500, b"<html></html>", {"content-type": "text/html"}, "HTTP 500 with an HTML page"),
        (500, b"{oops", {}, "HTTP 500 with a body that is not valid JSON"),
        (500, b"upstream went away", {}, "HTTP 500 with a non-JSON body: upstream went away"),
        (500, b'{"a":1}', {}, "HTTP 500 with a non-JSON body"),
    ],
    ids=["empty", "html-title", "html", "invalid-json", "text", "other-json"],
)
def test_a_body_without_a_message_is_described(status, body, headers, message):
    assert classify(status, headers, body, contract=BARE).message == message


def test_a_failure_without_a_status_says_a_response():
    failure = classify_error_body(None, ErrorBody(body_kind=parse_error_body(b"").body_kind))
    assert failure.message == "a response with an empty body"


def test_the_default_contract_is_the_cometapi_preset():
    body = b'{"error":{"code":"invalid_request","message":"field messages is required"}}'
    assert classify(500, {}, body).category == "validation"
    assert classify_error_body(500, parse_error_body(body)).category == "validation"


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (200, {"Content-Type": "text/html; charset=utf-8"}, b"Welcome to the console"),
        (200, {}, b"<!DOCTYPE html><html><head><title>Console</title></head></html>"),
        (200, {}, b"  \n <!doctype html><html><title>Console</title></html>"),
    ],
    ids=["content-type-alone", "body-alone", "body-after-whitespace"],
)
def test_html_on_a_200_is_detected_by_content_type_or_body_alone(status, headers, body):
    failure = classify(status, headers, body, contract=COMET)
    assert (failure.kind, failure.category) == ("http", "endpoint")
    assert failure.code == "html_on_api_path"


def test_a_200_whose_html_starts_late_is_parsed_as_json_not_html():
    failure = classify(200, {}, b" " * 64 + b"<html></html>", contract=COMET)
    assert (failure.kind, failure.code) == ("parser", "invalid_json")


def test_a_request_id_in_both_body_and_header_keeps_the_bodys():
    body = b'{"error":{"message":"no (request id: from-body)","code":"model_not_found"}}'
    failure = classify(503, {"X-Request-Id": "from-header"}, body, contract=COMET)
    assert failure.request_id == "from-body"


@pytest.mark.parametrize("header", ["X-Oneapi-Request-Id", "x-request-id", "Request-Id"], ids=str)
def test_a_request_id_header_fills_a_failure_without_one(header):
    failure = classify(503, {header: "  rid-1  "}, b"", contract=COMET)
    assert failure.request_id == "rid-1"


def test_the_first_known_request_id_header_wins_and_is_bounded():
    headers = {"request-id": "third", "x-request-id": "x" * 300, "x-oneapi-request-id": ""}
    assert classify(503, headers, b"", contract=COMET).request_id == "x" * 128


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"error":{"message":"m","code":"oops"}}', "oops"),
        (b"{not json", "invalid_json"),
        (b"{}", "missing_choices"),
    ],
    ids=["in-band", "invalid-json", "missing-choices"],
)
def test_a_200_failure_takes_the_request_id_header(body, code):
    failure = classify(200, {"x-request-id": "rid-200"}, body, contract=BARE)
    assert failure.code == code
    assert failure.request_id == "rid-200"


def test_a_semantic_failure_takes_the_request_id_header():
    body = (
        b'{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant",'
        b'"content":""},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
    )
    failure = classify(200, {"x-request-id": "rid-sem"}, body, contract=COMET)
    assert (failure.code, failure.request_id) == ("empty_content", "rid-sem")


# -- parser violations -----------------------------------------------------------------

VIOLATION_CODES = {
    ViolationKind.EMPTY_BODY: "empty_body",
    ViolationKind.INVALID_JSON: "invalid_json",
    ViolationKind.NOT_OBJECT: "not_object",
    ViolationKind.MISSING: "missing_field",
    ViolationKind.NULL: "null_field",
    ViolationKind.ERROR_ENVELOPE: "error_envelope",
    ViolationKind.TYPE: "wrong_type",
    ViolationKind.EMPTY: "empty_field",
    ViolationKind.NOT_SSE: "not_sse",
    ViolationKind.CUT_CHUNK: "malformed_chunk",
    ViolationKind.AFTER_DONE: "data_after_done",
    ViolationKind.MISSING_USAGE: "missing_usage",
    ViolationKind.INVALID_FIELD: "invalid_sse_field",
}


def _violation(kind, path="$.id"):
    return Violation(kind=kind, path=path, expected="something", got="other")


@pytest.mark.parametrize(("kind", "code"), list(VIOLATION_CODES.items()), ids=str)
def test_each_violation_kind_has_its_code(kind, code):
    failure = _parser_failure(200, (_violation(kind),), COMET, ())
    assert (failure.kind, failure.category, failure.code) == ("parser", "contract", code)
    assert failure.message == "$.id: expected something, got other"
    assert failure.retry == "fallback"


def test_every_violation_kind_is_in_the_table():
    assert set(VIOLATION_CODES) == set(ViolationKind)


@pytest.mark.parametrize(
    ("kind", "path", "code"),
    [
        (ViolationKind.MISSING, "$.choices", "missing_choices"),
        (ViolationKind.EMPTY, "$.choices", "missing_choices"),
        (ViolationKind.MISSING, "$.choices[0].message", "missing_field"),
        (ViolationKind.EMPTY, "$.choices[0].message.content", "empty_field"),
        (ViolationKind.TYPE, "$.choices", "wrong_type"),
        (ViolationKind.MISSING, "$.usage", "missing_usage"),
        (ViolationKind.MISSING, "$.usage.total_tokens", "missing_usage"),
        (ViolationKind.NULL, "$.usage", "null_field"),
        (ViolationKind.EMPTY, "$.usage", "empty_field"),
        (ViolationKind.ERROR_ENVELOPE, "$.usage", "error_envelope"),
        (ViolationKind.EMPTY, "$.id", "empty_field"),
    ],
    ids=[
        "no-choices",
        "empty-choices",
        "no-message",
        "empty-content",
        "choices-wrong-type",
        "no-usage",
        "no-total",
        "null-usage",
        "empty-usage",
        "envelope-at-usage",
        "empty-id",
    ],
)
def test_paths_refine_the_violation_code(kind, path, code):
    assert _parser_failure(200, (_violation(kind, path),), COMET, ()).code == code


@pytest.mark.parametrize(("count", "suffix"), [(2, " (+1 more)"), (4, " (+3 more)")], ids=str)
def test_more_violations_are_counted_in_the_message(count, suffix):
    violations = (_violation(ViolationKind.MISSING),) + (_violation(ViolationKind.TYPE),) * (
        count - 1
    )
    failure = _parser_failure(200, violations, COMET, ())
    assert failure.code == "missing_field"
    assert failure.message == "$.id: expected something, got other" + suffix


def test_the_contract_sets_adjust_a_parser_failures_decision():
    contract = replace(COMET, errors=ErrorTable(rules=(), retryable=("contract",)))
    assert _parser_failure(200, (_violation(ViolationKind.MISSING),), contract, ()).retry == (
        "retry"
    )


def test_a_rules_body_kind_built_at_run_time_matches_by_value():
    # A body kind read from a contract file is an equal string, not the same object.
    kind = "".join(["ht", "ml"])
    contract = _with_rules(ErrorRule(name="page", category="endpoint", body=kind))
    failure = classify(500, {"content-type": "text/html"}, b"<html></html>", contract=contract)
    assert failure.code == "page"


@pytest.mark.parametrize(
    ("status", "row"),
    [(199, ("http", "endpoint", "informational")), (300, ("http", "endpoint", "redirect"))],
    ids=["199", "300"],
)
def test_only_2xx_is_parsed_as_a_completion(status, row):
    failure = classify(status, {}, b"", contract=BARE)
    assert (failure.kind, failure.category, failure.code) == row
    assert classify(200, {}, b"", contract=BARE).code == "empty_body"
    assert classify(299, {}, b"", contract=BARE).code == "empty_body"


def test_html_starting_within_the_first_64_bytes_is_detected():
    failure = classify(200, {}, b" " * 63 + b"<html></html>", contract=COMET)
    assert failure.code == "html_on_api_path"


@pytest.mark.parametrize("code", ["1113", "100001", "4290"], ids=str)
def test_a_numeric_provider_code_other_than_the_status_is_kept(code):
    body = b'{"error":{"message":"balance","code":"%s"}}' % code.encode()
    assert classify(429, {}, body, contract=BARE).code == code


def test_headers_are_found_by_name_whatever_else_is_there():
    headers = {"zzz-first": "application/json", "Content-Type": "text/html"}
    failure = classify(200, headers, b"Welcome to the console", contract=COMET)
    assert failure.code == "html_on_api_path"


@pytest.mark.parametrize("header", REQUEST_ID_HEADERS, ids=str)
def test_each_request_id_header_is_read(header):
    failure = classify(500, {header: "req-123"}, b"", contract=load_preset("openai"))
    assert failure is not None
    assert failure.request_id == "req-123"


def test_litellm_call_id_is_a_request_id():
    assert "x-litellm-call-id" in REQUEST_ID_HEADERS
