"""Every row of both presets' error tables is reached by a real-looking response."""

import json

import pytest

from chatcontract.contract import load_preset
from chatcontract.failures import classify

HTML = {"content-type": "text/html"}


def err(message, code="", error_type="comet_api_error"):
    return json.dumps({"error": {"message": message, "type": error_type, "code": code}}).encode()


COMET_ROWS = {
    "invalid_request": (500, {}, err("field messages is required", "invalid_request")),
    "model_not_found": (
        503,
        {},
        err("no available channel for group default and model x (distributor)", "model_not_found"),
    ),
    "context_length_exceeded": (
        400,
        {},
        err("This model's maximum context length is 8192 tokens", "context_length_exceeded"),
    ),
    "context_window_exceeded": (
        400,
        {},
        err("Requested tokens (600) exceed context window of 512", "", "invalid_request_error"),
    ),
    "content_policy_violation": (
        400,
        {},
        err("Your request was rejected by the safety system", "content_policy_violation"),
    ),
    "content_policy_refusal": (
        400,
        {},
        err(
            "The response was filtered due to the prompt triggering Azure OpenAI's content "
            "management policy.",
        ),
    ),
    "model_name_required": (400, {}, err("model name is required")),
    "model_not_priced": (
        400,
        {},
        err("model claude-haiku-4-5 has not been priced by the administrator yet"),
    ),
    "invalid_json_body": (400, {}, err("Invalid request body: unexpected end of JSON input")),
    "insufficient_user_quota": (
        403,
        {},
        err("user quota is not enough", "insufficient_user_quota"),
    ),
    "insufficient_quota": (429, {}, err("You exceeded your current quota", "insufficient_quota")),
    "quota_exceeded": (429, {}, err("You exceeded your current quota", "429", "None")),
    "unknown_model": (400, {}, err("Invalid model name passed in model=gpt-9", "400", "None")),
    "token_quota_exhausted": (
        401,
        {},
        err("This token quota is exhausted TokenStatusExhausted[sk-x***y]"),
    ),
    "token_expired": (401, {}, err("This token has expired")),
    "invalid_token": (401, {}, err("Invalid token")),
    "forbidden": (403, {}, err("this group has no quota left for the model")),
    "model_not_allowed": (403, {}, err("this token is not allowed to use model x")),
    "request_too_large": (413, {}, b""),
    "invalid_url": (
        404,
        {},
        err("Invalid URL (POST /v1/chat/completion)", "", "invalid_request_error"),
    ),
    "rate_limited": (429, {}, b""),
    "gateway_timeout": (524, HTML, b"<html><title>524: A timeout occurred</title></html>"),
    "upstream_error": (502, {}, b""),
    "redirect": (302, {"location": "https://www.cometapi.com/"}, b""),
    "html_on_api_path": (200, HTML, b"<!doctype html><html><title>CometAPI</title></html>"),
    "client_error": (422, {}, b""),
}

OPENAI_ROWS = {
    "invalid_api_key": (
        401,
        {},
        err("Incorrect API key provided", "invalid_api_key", "invalid_request_error"),
    ),
    "insufficient_quota": (
        429,
        {},
        err("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
    ),
    "model_not_found": (
        404,
        {},
        err("The model `gpt-9` does not exist", "model_not_found", "invalid_request_error"),
    ),
    "context_length_exceeded": (
        400,
        {},
        err("This model's maximum context length is 8192 tokens", "context_length_exceeded"),
    ),
    "context_window_exceeded": (
        400,
        {},
        err("Requested tokens (600) exceed context window of 512", "", "invalid_request_error"),
    ),
    "content_policy_violation": (
        400,
        {},
        err("Your request was rejected by the safety system", "content_policy_violation"),
    ),
    "content_policy_refusal": (
        400,
        {},
        err(
            "The response was filtered due to the prompt triggering Azure OpenAI's content "
            "management policy.",
        ),
    ),
    "quota_exceeded": (429, {}, err("You exceeded your current quota", "429", "None")),
    "unknown_model": (
        404,
        {},
        err("The model `gpt-9` does not exist or you do not have access to it.", "404", "None"),
    ),
    "unauthorized": (403, {}, b""),
    "not_found": (404, {}, b""),
    "rate_limited": (429, {}, b""),
    "gateway_timeout": (504, {}, b""),
    "server_error": (500, {}, b""),
    "redirect": (308, {}, b""),
    "html_on_api_path": (200, HTML, b"<html><title>Sign in</title></html>"),
    "invalid_request": (409, {}, b""),
}

CASES = [("cometapi", name, row) for name, row in COMET_ROWS.items()] + [
    ("openai", name, row) for name, row in OPENAI_ROWS.items()
]


@pytest.mark.parametrize(("preset", "rows"), [("cometapi", COMET_ROWS), ("openai", OPENAI_ROWS)])
def test_every_rule_of_the_preset_has_a_case(preset, rows):
    assert [rule.name for rule in load_preset(preset).errors.rules] == list(rows)


@pytest.mark.parametrize(
    ("preset", "name", "row"), CASES, ids=[f"{preset}-{name}" for preset, name, _ in CASES]
)
def test_each_preset_rule_is_the_first_match_for_its_case(preset, name, row):
    contract = load_preset(preset)
    rule = next(rule for rule in contract.errors.rules if rule.name == name)
    status, headers, body = row
    failure = classify(status, headers, body, contract=contract)
    assert failure.category == rule.category
    assert failure.code == name


# The refusals that decide where a call goes next, in the words real servers use: each must
# land in its own category under both presets, whatever code a gateway put on it.
REFUSALS = {
    "openai-code": (
        400,
        err("This model's maximum context length is 8192 tokens.", "context_length_exceeded"),
        "context_length",
    ),
    "llama-cpp-python": (
        400,
        err("Requested tokens (600) exceed context window of 512", None, "invalid_request_error"),
        "context_length",
    ),
    "litellm-exceeds-the-window": (
        400,
        err("litellm.ContextWindowExceededError: prompt exceeds the context window", "400"),
        "context_length",
    ),
    "llama-cpp-server": (
        400,
        err("the request exceeds the available context size, try increasing it", None),
        "context_length",
    ),
    "openai-policy-code": (
        400,
        err(
            "Your request was rejected as a result of our safety system.",
            "content_policy_violation",
        ),
        "content_policy",
    ),
    "azure-content-management": (
        400,
        err(
            "The response was filtered due to the prompt triggering Azure OpenAI's content "
            "management policy.",
            "content_filter",
        ),
        "content_policy",
    ),
    "litellm-policy": (
        400,
        err("litellm.ContentPolicyViolationError: blocked", "400"),
        "content_policy",
    ),
    "usage-policies-words": (
        400,
        err("This request violates our usage policies.", ""),
        "content_policy",
    ),
}


@pytest.mark.parametrize("preset", ["cometapi", "openai"])
@pytest.mark.parametrize(("name", "row"), list(REFUSALS.items()), ids=list(REFUSALS))
def test_context_and_policy_refusals_get_their_own_category(preset, name, row):
    status, body, category = row
    failure = classify(status, {}, body, contract=load_preset(preset))
    assert failure.category == category
    assert failure.retry == ("fallback" if category == "context_length" else "none")


@pytest.mark.parametrize("preset", ["cometapi", "openai"])
def test_a_plain_bad_request_is_still_validation_not_a_refusal(preset):
    body = err("Invalid 'temperature': decimal above maximum value.", "decimal_above_max_value")
    assert classify(400, {}, body, contract=load_preset(preset)).category == "validation"


def test_an_in_band_context_error_in_a_stream_is_context_length():
    body = err("This model's maximum context length is 8192 tokens.", "context_length_exceeded")
    failure = classify(200, {}, body, contract=load_preset("cometapi"))
    assert (failure.kind, failure.category) == ("api_error", "context_length")
