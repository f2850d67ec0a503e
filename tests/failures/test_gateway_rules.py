"""Behind a gateway that rewrites error codes, quota stays quota and an unknown model stays model.

LiteLLM's proxy answers with ``{"error": {"message", "type", "param", "code"}}`` where ``code``
is the status as a string and ``type``/``param`` are often the text ``"None"``; the upstream's
own words survive only in the message. Bodies below follow LiteLLM 1.x's shapes.
"""

import json

import pytest

from chatcontract.contract import load_preset
from chatcontract.failures import classify

PRESETS = {name: load_preset(name) for name in ("cometapi", "openai")}


def litellm(status, message, error_type="None"):
    body = {"error": {"message": message, "type": error_type, "param": "None", "code": str(status)}}
    return json.dumps(body).encode()


OPENAI_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
QUOTA_CASES = {
    "openai-words": litellm(
        429,
        f"litellm.RateLimitError: RateLimitError: OpenAIException - {OPENAI_QUOTA} "
        "Received Model Group=gpt-4o\nAvailable Model Group Fallbacks=None",
    ),
    "upstream-body-echoed": litellm(
        429,
        "litellm.RateLimitError: RateLimitError: OpenAIException - Error code: 429 - "
        "{'error': {'message': 'quota exceeded', 'type': 'insufficient_quota', 'param': None, "
        "'code': 'insufficient_quota'}}",
        error_type="throttling_error",
    ),
    "cometapi-user-quota": litellm(
        403,
        "litellm.PermissionDeniedError: PermissionDeniedError: OpenAIException - user quota "
        "is not enough (request id: 2026020513)",
    ),
    "cometapi-pre-consumed": litellm(
        403, "chat pre-consumed quota failed, user quota: 0, need quota: 512"
    ),
}
MODEL_CASES = {
    "litellm-unknown-model": (
        400,
        litellm(
            400,
            "{'error': '/chat/completions: Invalid model name passed in model=gpt-9. "
            "Call `/v1/models` to view available models for your key.'}",
        ),
    ),
    "openai-404-rewritten": (
        404,
        litellm(
            404,
            "litellm.NotFoundError: NotFoundError: OpenAIException - The model `gpt-9` does "
            "not exist or you do not have access to it.",
        ),
    ),
    "upstream-code-in-message": (
        404,
        litellm(
            404,
            "litellm.NotFoundError: OpenAIException - Error code: 404 - {'error': {'code': "
            "'model_not_found', 'message': 'nope'}}",
        ),
    ),
    "cometapi-503-rewritten": (
        503,
        litellm(
            503,
            "litellm.ServiceUnavailableError: ServiceUnavailableError: OpenAIException - no "
            "available channel for group default and model sora-2-all (distributor)",
        ),
    ),
}


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("body", list(QUOTA_CASES.values()), ids=list(QUOTA_CASES))
def test_quota_behind_a_gateway_stays_quota(preset, body):
    status = json.loads(body)["error"]["code"]
    failure = classify(int(status), {}, body, contract=PRESETS[preset])
    assert (failure.kind, failure.category, failure.code) == (
        "api_error",
        "quota",
        "quota_exceeded",
    )
    assert failure.retry == "fallback"


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize(("status", "body"), list(MODEL_CASES.values()), ids=list(MODEL_CASES))
def test_an_unknown_model_behind_a_gateway_stays_model(preset, status, body):
    failure = classify(status, {}, body, contract=PRESETS[preset])
    assert (failure.kind, failure.category, failure.code) == ("api_error", "model", "unknown_model")
    assert failure.retry == "none"


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize(
    ("status", "message", "category"),
    [
        (
            429,
            "litellm.RateLimitError: Rate limit reached for gpt-4o in organization org-1 on "
            "tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.",
            "rate_limit",
        ),
        (
            429,
            "No deployments available for selected model, Try again in 60 seconds. Passed "
            "model=local-model.",
            "rate_limit",
        ),
        (404, "Not Found", "endpoint"),
        (503, "litellm.ServiceUnavailableError: upstream connect error", "upstream"),
    ],
    ids=["rate-limit", "router-cooldown", "plain-404", "plain-503"],
)
def test_a_gateway_error_without_those_words_keeps_its_status_meaning(
    preset, status, message, category
):
    failure = classify(status, {}, litellm(status, message), contract=PRESETS[preset])
    assert failure.category == category


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_providers_own_codes_still_name_the_failure(preset):
    body = b'{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}'
    failure = classify(429, {}, body, contract=PRESETS[preset])
    assert (failure.category, failure.code) == ("quota", "insufficient_quota")
    missing = b'{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}'
    assert classify(404, {}, missing, contract=PRESETS[preset]).code == "model_not_found"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_gateway_rows_come_before_every_status_only_row(preset):
    rules = PRESETS[preset].errors.rules
    names = [rule.name for rule in rules]
    first_status_only = min(
        i
        for i, rule in enumerate(rules)
        if rule.status and rule.message is None and rule.code is None
    )
    assert names.index("quota_exceeded") < first_status_only
    assert names.index("unknown_model") < first_status_only


# Captured verbatim from a LiteLLM 1.108.7 proxy (no retries) in front of an upstream that
# answered with OpenAI's and CometAPI's own bodies (insufficient_quota 429, model_not_found 404,
# CometAPI 503 model_not_found and 403 insufficient_user_quota), plus its own unknown-model 400.
CAPTURED = {
    "openai-429-insufficient_quota": (
        429,
        "quota",
        '{"error":{"message":"litellm.RateLimitError: RateLimitError: OpenAIException - You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.\\n\\nLiteLLM: model group \'quota-model\' failed with the error above. No fallback was attempted.","type":"throttling_error","param":null,"code":"429"}}',
    ),
    "openai-404-model_not_found": (
        404,
        "model",
        '{"error":{"message":"litellm.NotFoundError: NotFoundError: OpenAIException - The model `gpt-9` does not exist or you do not have access to it.\\n\\nLiteLLM: model group \'gone-model\' failed with the error above. No fallback was attempted.","type":"invalid_request_error","param":null,"code":"404"}}',
    ),
    "cometapi-503-model_not_found": (
        503,
        "model",
        '{"error":{"message":"litellm.ServiceUnavailableError: ServiceUnavailableError: OpenAIException - no available channel for group default and model sora-2-all (distributor) (request id: 20260205132859798638387SIHCnxzJ)\\n\\nLiteLLM: model group \'comet-model\' failed with the error above. No fallback was attempted.","type":"internal_server_error","param":null,"code":"503"}}',
    ),
    "cometapi-403-insufficient_user_quota": (
        403,
        "quota",
        '{"error":{"message":"litellm.APIError: APIError: OpenAIException - user quota is not enough (request id: 2026X)\\n\\nLiteLLM: model group \'cometquota-model\' failed with the error above. No fallback was attempted.","type":"permission_error","param":null,"code":"403"}}',
    ),
    "litellm-400-invalid-model-name": (
        400,
        "model",
        '{"error":{"message":"/chat/completions: Invalid model name passed in model=gpt-9. Call `/v1/models` to view available models for your key.","type":"invalid_request_error","param":null,"code":"400","provider_specific_fields":{"error":"/chat/completions: Invalid model name passed in model=gpt-9. Call `/v1/models` to view available models for your key."}}}',
    ),
}


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize(
    ("status", "category", "body"), list(CAPTURED.values()), ids=list(CAPTURED)
)
def test_real_litellm_bodies_keep_their_meaning(preset, status, category, body):
    failure = classify(status, {}, body, contract=PRESETS[preset])
    assert (failure.kind, failure.category) == ("api_error", category)
    assert failure.code == ("quota_exceeded" if category == "quota" else "unknown_model")
    assert failure.retry == ("fallback" if category == "quota" else "none")
