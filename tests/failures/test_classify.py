"""Every row of the classification table in the wire/classification issue, CometAPI first."""

import json

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.contract import load_preset
from chatcontract.failures import FAILURE_KEYS, classify, classify_response

COMET = load_preset("cometapi")
OPENAI = load_preset("openai")

E1 = json.dumps(
    {
        "id": "chatcmpl-DNA27oKtBUL8TmbGpBM3B3zhWgYfZ",
        "object": "chat.completion",
        "created": 1774412483,
        "model": "gpt-4.1-nano-2025-04-14",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Four",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 29,
            "completion_tokens": 2,
            "total_tokens": 31,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_490a4ad033",
    }
).encode()

E3 = b'{"error": {"code": "", "message": "model name is required (request id: 20260205132859798638387SIHCnxzJ)", "type": "comet_api_error"}}'
E4 = b'{"error": {"message": "field messages is required (request id: 2026020513313084131287jXTpB855)", "type": "comet_api_error", "param": "", "code": "invalid_request"}}'
E5 = b'{"error":{"code":"model_not_found","message":"no available channel for group default and model sora-2-all (distributor) (request id: 20260205132859798638387SIHCnxzJ)","type":"comet_api_error"}}'
E6 = '{"error":{"type":"comet_api_error","message":"model claude-haiku-4-5 has not been priced by the administrator yet…"}}'.encode()
E9 = b'{"error": {"code": "", "message": "Invalid token (request id: xxxxx)", "type": "new_api_error"}}'
QUOTA_403 = b'{"error":{"message":"user quota is not enough (request id: 1)","type":"comet_api_error","param":"","code":"insufficient_user_quota"}}'
QUOTA_429 = b'{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}'
HTML = b"<!DOCTYPE html><html><head><title>CometAPI</title></head><body>app</body></html>"
CF_524 = b"<!DOCTYPE html><html><head><title>api.cometapi.com | 524: A timeout occurred</title></head></html>"


def test_a_valid_completion_is_not_a_failure():
    assert classify(200, {"content-type": "application/json"}, E1, contract=COMET) is None


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "category", "code", "retry"),
    [
        (500, E4, {}, "api_error", "validation", "invalid_request", "none"),
        (503, E5, {}, "api_error", "model", "model_not_found", "none"),
        (400, E3, {}, "api_error", "validation", "model_name_required", "none"),
        (400, E6, {}, "api_error", "model", "model_not_priced", "none"),
        (401, E9, {}, "api_error", "auth", "invalid_token", "none"),
        (403, QUOTA_403, {}, "api_error", "quota", "insufficient_user_quota", "fallback"),
        (429, b"", {}, "http", "rate_limit", "rate_limited", "retry"),
        (429, QUOTA_429, {}, "api_error", "quota", "insufficient_quota", "fallback"),
        (
            500,
            b'{"error":{"message":"do request failed","type":"comet_api_error","code":"do_request_failed"}}',
            {},
            "api_error",
            "upstream",
            "do_request_failed",
            "retry",
        ),
        (
            502,
            b"<html><head><title>502 Bad Gateway</title></head></html>",
            {"content-type": "text/html"},
            "http",
            "upstream",
            "upstream_error",
            "retry",
        ),
        (
            503,
            b'{"error":{"message":"bad response status code 503","type":"upstream_error","param":"503","code":"bad_response_status_code"}}',
            {},
            "api_error",
            "upstream",
            "bad_response_status_code",
            "retry",
        ),
        (504, b"", {}, "http", "upstream", "gateway_timeout", "retry"),
        (
            524,
            CF_524,
            {"content-type": "text/html"},
            "http",
            "upstream",
            "gateway_timeout",
            "retry",
        ),
        (200, HTML, {"content-type": "text/html"}, "http", "endpoint", "html_on_api_path", "none"),
        (301, b"", {"location": "https://cometapi.com/"}, "http", "endpoint", "redirect", "none"),
        (
            404,
            b'{"error":{"message":"Invalid URL (POST /v1/x)","type":"invalid_request_error","param":"","code":""}}',
            {},
            "api_error",
            "endpoint",
            "invalid_url",
            "none",
        ),
    ],
    ids=[
        "500-invalid_request",
        "503-model_not_found",
        "400-model-required",
        "400-not-priced",
        "401-invalid-token",
        "403-quota",
        "429-empty",
        "429-insufficient_quota",
        "500-gateway",
        "502-html",
        "503-upstream",
        "504-empty",
        "524-cloudflare",
        "200-html",
        "301-redirect",
        "404-invalid-url",
    ],
)
def test_cometapi_table(status, body, headers, kind, category, code, retry):
    failure = classify(status, headers, body, contract=COMET)
    assert failure is not None
    assert (failure.kind, failure.category, failure.code, failure.retry) == (
        kind,
        category,
        code,
        retry,
    )
    assert failure.status == status


def test_request_id_is_pulled_out_of_the_message():
    failure = classify(503, {}, E5, contract=COMET)
    assert failure.request_id == "20260205132859798638387SIHCnxzJ"
    assert "request id" not in failure.message
    assert failure.message.endswith("(distributor)")


def test_request_id_falls_back_to_the_gateway_header():
    failure = classify(
        429, {"X-Oneapi-Request-Id": "2026112400000012345abcdEFGH"}, b"", contract=COMET
    )
    assert failure.request_id == "2026112400000012345abcdEFGH"


def test_a_200_carrying_an_error_is_an_in_band_api_error_not_success():
    body = b'{"error":{"message":"context length exceeded","type":"invalid_request_error","code":"context_length_exceeded"}}'
    failure = classify(200, {}, body, contract=OPENAI)
    assert failure.kind == "api_error"
    assert failure.category == "context_length"
    assert failure.status == 200


def test_openai_table():
    key = b'{"error":{"message":"Incorrect API key provided: sk-ab***yz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}'
    assert classify(401, {}, key, contract=OPENAI).category == "auth"
    missing = b'{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}'
    assert (
        classify(404, {}, missing, contract=OPENAI).category,
        classify(404, {}, missing, contract=OPENAI).retry,
    ) == ("model", "none")
    rate = b'{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
    assert classify(429, {}, rate, contract=OPENAI).category == "rate_limit"
    assert classify(429, {}, QUOTA_429, contract=OPENAI).category == "quota"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty_body"),
        (b"{not json", "invalid_json"),
        (b"[]", "not_object"),
        (
            b'{"id":"x","model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',
            "missing_choices",
        ),
        (
            b'{"id":"x","model":"m","usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',
            "missing_choices",
        ),
        (E1.replace(b'"content": "Four"', b'"content": 42'), "wrong_type"),
        (
            json.dumps({k: v for k, v in json.loads(E1).items() if k != "usage"}).encode(),
            "missing_usage",
        ),
    ],
    ids=["empty", "bad-json", "array", "empty-choices", "no-choices", "content-int", "no-usage"],
)
def test_a_200_the_parser_rejects_is_a_parser_contract_failure(body, code):
    failure = classify(200, {}, body, contract=COMET)
    assert (failure.kind, failure.category, failure.code) == ("parser", "contract", code)
    assert failure.retry == "fallback"


def test_wrong_type_message_names_path_and_types():
    failure = classify(200, {}, E1.replace(b'"content": "Four"', b'"content": 42'), contract=COMET)
    assert failure.message.startswith("$.choices[0].message.content: expected string")
    assert "got 42" in failure.message


@pytest.mark.parametrize(
    ("mutate", "category", "code"),
    [
        (lambda d: d["choices"][0]["message"].update(content=""), "content", "empty_content"),
        (
            lambda d: (
                d["choices"][0]["message"].update(content=None),
                d["choices"][0].update(finish_reason="content_filter"),
            ),
            "content",
            "content_filter",
        ),
        (lambda d: d["usage"].update(total_tokens=99), "usage", "usage_mismatch"),
        (
            lambda d: d["choices"][0].update(finish_reason="eos"),
            "contract",
            "unexpected_finish_reason",
        ),
    ],
    ids=["empty-content", "content-filter", "usage-mismatch", "unknown-finish-reason"],
)
def test_semantic_failures(mutate, category, code):
    doc = json.loads(E1)
    mutate(doc)
    failure = classify(200, {}, json.dumps(doc).encode(), contract=COMET)
    assert (failure.kind, failure.category, failure.code) == ("semantic", category, code)


def test_completion_tokens_above_max_tokens_is_a_usage_failure():
    failure = classify(200, {}, E1, contract=COMET, max_tokens=1)
    assert (failure.category, failure.code) == ("usage", "usage_exceeds_max_tokens")


def test_transport_exception_goes_through_the_same_entry_point():
    failure = classify(httpx2.ReadTimeout("x"))
    assert (failure.kind, failure.category, failure.code) == (
        "transport",
        "timeout",
        "read_timeout",
    )


def test_unknown_status_without_rule_uses_the_status_class():
    failure = classify(418, {}, b"I'm a teapot", contract=COMET)
    assert (failure.kind, failure.category) == ("http", "validation")
    assert "I'm a teapot" in failure.message


def test_secrets_in_error_messages_are_redacted():
    body = b'{"error":{"message":"Incorrect API key provided: sk-realkeyabcdefghijkl","type":"invalid_request_error","code":"invalid_api_key"}}'
    failure = classify(401, {}, body, contract=OPENAI, secrets=("sk-realkeyabcdefghijkl",))
    assert "sk-realkey" not in json.dumps(failure.to_dict())


@settings(max_examples=300, deadline=None)
@given(
    status=st.integers(100, 599),
    body=st.binary(max_size=300),
    ctype=st.sampled_from([None, "application/json", "text/html", "text/plain"]),
)
def test_any_response_gives_a_classification_or_success_never_an_exception(status, body, ctype):
    headers = {"content-type": ctype} if ctype else {}
    failure = classify_response(status, headers, body, contract=COMET)
    if failure is not None:
        assert tuple(failure.to_dict()) == FAILURE_KEYS
    if not 200 <= status < 300:
        assert failure is not None
