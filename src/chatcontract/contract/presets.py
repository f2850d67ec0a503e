"""Built-in contract presets, as the plain documents a contract file holds.

``cometapi`` carries the facts in ``shared/research/cometapi.md``: new-api status codes that
differ from OpenAI's (500 ``invalid_request``, 503 ``model_not_found``), the
``(request id: ...)`` suffix, empty-body 429s, HTML on wrong paths. ``openai`` carries OpenAI's
conventions. Provider quirks live here as data; the classifier reads them, it has no if-ladder.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

__all__ = ["PRESETS", "preset_document"]

_FIXTURE_PROMPT = "Reply with exactly: pong"

_REQUEST_ID_SUFFIX = r"\(request id: ([^)\s]+)\)"

# Sized for interactive chat: a silent primary costs ~10 s before the fallback starts. A
# reasoning model that thinks before its first token needs larger first_byte/first_token
# limits (README, "Timeouts for reasoning models").
_COMMON_TIMEOUTS = {
    "connect_ms": 5_000,
    "first_byte_ms": 10_000,
    "first_token_ms": 10_000,
    "idle_ms": 10_000,
    "total_ms": 60_000,
}

_COMMON_RETRY = {
    "max_attempts": 2,
    "backoff_initial_ms": 500,
    "backoff_max_ms": 8_000,
    "backoff_multiplier": 2.0,
    "jitter": 0.5,
    "retry_after_cap_ms": 10_000,
}

_RESPONSE = {
    "required_paths": [
        "id",
        "model",
        "choices[0].message.content",
        "choices[0].finish_reason",
        "usage.prompt_tokens",
        "usage.completion_tokens",
        "usage.total_tokens",
    ],
    "optional_paths": ["created", "system_fingerprint", "choices[0].message.tool_calls"],
    "finish_reasons": ["stop", "length", "content_filter", "tool_calls"],
}


def _rule(name: str, category: str, **match: Any) -> dict[str, Any]:
    return {"name": name, "category": category, **match}


# Gateways such as LiteLLM rewrite ``error.code`` to the status as a string ("429", "404",
# "400") and keep the provider's words in the message (``litellm.RateLimitError: ...
# OpenAIException - You exceeded your current quota ...``). These rows read the words, so
# quota stays quota and an unknown model stays ``model`` behind a gateway. Each pattern is a
# plain alternation of phrases (no nested repetition: nothing to backtrack on).
_QUOTA_WORDS = (
    r"insufficient_(?:user_)?quota|exceeded your current quota|quota is not enough"
    r"|pre-consumed quota"
)
_UNKNOWN_MODEL_WORDS = (
    r"model_not_found|invalid model name|no available channel for"
    r"|the model `[^`]{0,200}` does not exist"
)


# A request too large for the route's window, in the words of OpenAI ("This model's maximum
# context length is 8192 tokens"), llama-cpp-python ("Requested tokens (600) exceed context
# window of 512"), llama.cpp's server ("the request exceeds the available context size") and
# LiteLLM (``litellm.ContextWindowExceededError``). Another route with a larger window may
# serve it; the same route never will.
_CONTEXT_WORDS = (
    r"context_length_exceeded|maximum context length|exceeds? (?:the )?context window"
    r"|exceeds the available context size|contextwindowexceedederror"
)
# A refusal on policy grounds: OpenAI's ``content_policy_violation``, Azure OpenAI's "content
# management policy" (code ``content_filter`` on a 400), LiteLLM's
# ``ContentPolicyViolationError``. Distinct from ``content`` (an empty or filtered answer).
_POLICY_WORDS = (
    r"content_policy_violation|content management policy|contentpolicyviolationerror"
    r"|violat\w{0,6} (?:our|the) (?:usage|content) polic"
)


def _refusal_rules() -> list[dict[str, Any]]:
    return [
        _rule(
            "context_length_exceeded",
            "context_length",
            code="context_length_exceeded",
            note="the prompt plus max_tokens exceed this route's context window: never retried "
            "on the same route; a fallback route with a larger context_window may serve it",
        ),
        _rule(
            "context_window_exceeded",
            "context_length",
            message=_CONTEXT_WORDS,
            note="the same refusal in the words of other servers and gateways (llama.cpp, "
            "LiteLLM, OpenAI behind a gateway that rewrote the code)",
        ),
        _rule(
            "content_policy_violation",
            "content_policy",
            code="content_policy_violation",
            note="the provider refused the request on policy grounds: one attempt, a clean "
            "error (policy.content_policy_fallback opts into a fallback)",
        ),
        _rule(
            "content_policy_refusal",
            "content_policy",
            message=_POLICY_WORDS,
            note="the same refusal in other words (Azure OpenAI's content management policy, "
            "LiteLLM's ContentPolicyViolationError)",
        ),
    ]


def _gateway_rules() -> list[dict[str, Any]]:
    return [
        _rule(
            "quota_exceeded",
            "quota",
            message=_QUOTA_WORDS,
            note="the message says the quota or balance is used up, whatever code a gateway "
            "put on it (LiteLLM sends code '429'): billing, not a rate limit; do not retry",
        ),
        _rule(
            "unknown_model",
            "model",
            message=_UNKNOWN_MODEL_WORDS,
            note="the message says the model is unknown (LiteLLM: 400 'Invalid model name "
            "passed in model=...', or the upstream's model_not_found under a generic 404 or "
            "503): never retry",
        ),
    ]


# Order matters: the first matching row decides. Specific body signals come before the
# status-only rows they refine (a 500 with invalid_request is validation, not upstream).
_COMETAPI_RULES = [
    _rule(
        "invalid_request",
        "validation",
        code="invalid_request",
        note="new-api answers a missing field or a wrong type with 500 invalid_request: "
        "never retry",
    ),
    _rule(
        "model_not_found",
        "model",
        code="model_not_found",
        note="503 'no available channel ... (distributor)': unknown or unavailable model, "
        "never retry",
    ),
    *_refusal_rules(),
    _rule("model_name_required", "validation", status=[400], message="model name is required"),
    _rule("model_not_priced", "model", status=[400], message="has not been priced"),
    _rule("invalid_json_body", "validation", status=[400], message=r"^invalid request"),
    _rule("insufficient_user_quota", "quota", code="insufficient_user_quota"),
    _rule("insufficient_quota", "quota", code="insufficient_quota"),
    *_gateway_rules(),
    _rule("token_quota_exhausted", "quota", status=[401], message="quota is exhausted"),
    _rule("token_expired", "auth", status=[401], message="token has expired"),
    _rule("invalid_token", "auth", status=[401]),
    _rule("forbidden", "quota", status=[403], message="quota"),
    _rule("model_not_allowed", "auth", status=[403]),
    _rule("request_too_large", "validation", status=[413]),
    _rule("invalid_url", "endpoint", status=[404]),
    _rule("rate_limited", "rate_limit", status=[429]),
    _rule(
        "gateway_timeout",
        "upstream",
        status=[504, 524],
        note="504 from the gateway, 524 from the CDN (origin silent ~100 s): retry with backoff",
    ),
    _rule("upstream_error", "upstream", status=[500, 502, 503]),
    _rule(
        "redirect",
        "endpoint",
        status=[301, 302, 307, 308],
        note="a wrong base URL or path is answered with a redirect, not a JSON 404",
    ),
    _rule(
        "html_on_api_path",
        "endpoint",
        body="html",
        note="the web console's HTML page: the base URL or path is wrong",
    ),
    _rule("client_error", "validation", status=[400, 422]),
]

_OPENAI_RULES = [
    _rule("invalid_api_key", "auth", code="invalid_api_key"),
    _rule(
        "insufficient_quota",
        "quota",
        code="insufficient_quota",
        note="a 429 saying insufficient_quota is billing, not a rate limit: do not retry",
    ),
    _rule("model_not_found", "model", code="model_not_found"),
    *_refusal_rules(),
    *_gateway_rules(),
    _rule("unauthorized", "auth", status=[401, 403]),
    _rule("not_found", "endpoint", status=[404]),
    _rule("rate_limited", "rate_limit", status=[429]),
    _rule("gateway_timeout", "upstream", status=[504, 524]),
    _rule("server_error", "upstream", status=[500, 502, 503]),
    _rule("redirect", "endpoint", status=[301, 302, 307, 308]),
    _rule("html_on_api_path", "endpoint", body="html"),
    _rule("invalid_request", "validation", status=[400, 409, 413, 422]),
]


def _document(
    *,
    name: str,
    provider: str,
    reference_url: str,
    base_url: str,
    env: list[str],
    model: str,
    fallback_model: str,
    rules: list[dict[str, Any]],
    request_id_pattern: str,
    cautions: list[str],
    prices: dict[str, dict[str, float]],
) -> dict[str, Any]:
    return {
        "version": 1,
        "name": name,
        "provider": provider,
        "reference_url": reference_url,
        "reviewed_on": dt.date.today().isoformat(),
        "review_every_days": 90,
        "owner": "",
        "revalidate_when": [
            "the provider changes its API reference or error-code page",
            "the model or a fallback route changes",
            "a new SDK major version is adopted",
            "a drift alert fires",
        ],
        "environment": "staging",
        "endpoint": {
            "base_url": base_url,
            "path": "/chat/completions",
            "method": "POST",
            "models_path": "/models",
        },
        "auth": {"header": "Authorization", "scheme": "Bearer", "env": env},
        "model": model,
        "fallbacks": [
            {
                "name": "smaller-model",
                "model": fallback_model,
                "continuation": "none",
                "context_window": None,
            }
        ],
        "request": {
            "required": ["model", "messages"],
            "fixture": {
                "model": model,
                "messages": [{"role": "user", "content": _FIXTURE_PROMPT}],
                "max_tokens": 16,
            },
            "optional_in_use": [
                "stream",
                "stream_options.include_usage",
                "temperature",
                "max_tokens",
            ],
            "cautions": cautions,
        },
        "response": copy.deepcopy(_RESPONSE),
        "streaming": {"used": True, "include_usage": True, "require_done": True},
        "errors": {
            "retryable": ["rate_limit", "upstream", "timeout", "network"],
            "non_retryable": ["auth", "validation", "model", "quota", "endpoint"],
            "request_id_pattern": request_id_pattern,
            "rules": copy.deepcopy(rules),
        },
        "policy": {
            "timeouts": dict(_COMMON_TIMEOUTS),
            "retry": dict(_COMMON_RETRY),
            "fallback_reserve_ms": 5_000,
            "breaker": {"enabled": True, "failures": 3, "cooldown_ms": 10_000},
            "content_policy_fallback": False,
            "usage_fields": ["prompt_tokens", "completion_tokens", "total_tokens"],
            "caps": {
                "max_tokens_per_call": 1024,
                "max_cost_per_call_usd": 0.05,
                "max_cost_per_day_usd": 20.0,
            },
            "prices": prices,
            "probe": {"interval_s": 60, "max_tokens": 64, "daily_cost_cap_usd": 0.5},
            "kill_switch_env": "CHATCONTRACT_KILL_SWITCH",
        },
        "attestations": {},
    }


PRESETS: dict[str, dict[str, Any]] = {
    "cometapi": _document(
        name="cometapi-chat-completions",
        provider="cometapi",
        reference_url="https://apidoc.cometapi.com/chat",
        base_url="https://api.cometapi.com/v1",
        env=["COMETAPI_KEY", "COMETAPI_API_KEY", "COMET_API_KEY"],
        model="gpt-4.1-nano",
        fallback_model="gpt-4o-mini",
        rules=_COMETAPI_RULES,
        request_id_pattern=_REQUEST_ID_SUFFIX,
        cautions=["temperature+top_p: CometAPI advises against setting both"],
        prices={
            "gpt-4.1-nano": {"input_per_million": 0.08, "output_per_million": 0.32},
            "gpt-4o-mini": {"input_per_million": 0.12, "output_per_million": 0.48},
        },
    ),
    "openai": _document(
        name="openai-chat-completions",
        provider="openai",
        reference_url="https://platform.openai.com/docs/api-reference/chat/create",
        base_url="https://api.openai.com/v1",
        env=["OPENAI_API_KEY"],
        model="gpt-4.1-nano",
        fallback_model="gpt-4o-mini",
        rules=_OPENAI_RULES,
        request_id_pattern=_REQUEST_ID_SUFFIX,
        cautions=["temperature+top_p: OpenAI recommends altering one or the other, not both"],
        prices={
            "gpt-4.1-nano": {"input_per_million": 0.10, "output_per_million": 0.40},
            "gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.60},
        },
    ),
}


def preset_document(name: str) -> dict[str, Any]:
    """A fresh copy of the named preset's document; ``KeyError`` if there is no such preset."""
    return copy.deepcopy(PRESETS[name])
