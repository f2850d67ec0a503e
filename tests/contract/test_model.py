import datetime as dt

import pytest

from chatcontract.contract import (
    Auth,
    Endpoint,
    ErrorRule,
    ErrorTable,
    FallbackRoute,
    Policy,
    ResponseSpec,
    RetryPolicy,
    Timeouts,
    load_preset,
)
from chatcontract.errors import ConfigError


def test_cometapi_preset_carries_the_research_facts():
    contract = load_preset("cometapi")
    assert contract.endpoint.url == "https://api.cometapi.com/v1/chat/completions"
    assert contract.endpoint.models_url == "https://api.cometapi.com/v1/models"
    assert contract.auth.header == "Authorization"
    assert contract.auth.scheme == "Bearer"
    assert contract.auth.env == ("COMETAPI_KEY", "COMETAPI_API_KEY", "COMET_API_KEY")
    assert contract.request.required == ("model", "messages")
    rules = {rule.name: rule for rule in contract.errors.rules}
    assert rules["invalid_request"].category == "validation"
    assert rules["invalid_request"].code == "invalid_request"
    assert rules["model_not_found"].category == "model"
    assert rules["insufficient_user_quota"].category == "quota"
    assert rules["rate_limited"].status == (429,)
    assert rules["rate_limited"].body == "any"  # an empty-body 429 is still a rate limit
    assert "validation" in contract.errors.non_retryable
    assert "model" in contract.errors.non_retryable
    assert set(contract.errors.retryable) >= {"rate_limit", "upstream"}
    assert contract.errors.request_id_pattern == r"\(request id: ([^)\s]+)\)"


def test_cometapi_specific_rules_come_before_the_status_rows_they_refine():
    names = [rule.name for rule in load_preset("cometapi").errors.rules]
    assert names.index("invalid_request") < names.index("upstream_error")
    assert names.index("model_not_found") < names.index("upstream_error")
    assert names.index("insufficient_quota") < names.index("rate_limited")


def test_openai_preset_uses_openai_conventions():
    contract = load_preset("openai")
    assert contract.endpoint.base_url == "https://api.openai.com/v1"
    assert contract.auth.env == ("OPENAI_API_KEY",)
    codes = {rule.code for rule in contract.errors.rules if rule.code}
    assert {"invalid_api_key", "insufficient_quota", "model_not_found"} <= codes


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ConfigError, match="cometapi, openai"):
        load_preset("anthropic")


def test_auth_resolves_the_first_set_variable_in_order():
    auth = Auth(env=("A_KEY", "B_KEY"))
    assert auth.resolve({"B_KEY": "sk-b", "A_KEY": "sk-a"}) == ("A_KEY", "sk-a")
    assert auth.resolve({"A_KEY": "  ", "B_KEY": "sk-b"}) == ("B_KEY", "sk-b")
    assert auth.resolve({}) is None
    assert auth.header_value("sk-x") == "Bearer sk-x"
    assert Auth(header="x-api-key", scheme="", env=("K",)).header_value("sk-x") == "sk-x"


def test_model_override_order_flag_then_environment_then_file():
    contract = load_preset("cometapi")
    assert contract.resolved_model(environ={}) == "gpt-4.1-nano"
    assert contract.resolved_model(environ={"CHATCONTRACT_MODEL": "gpt-4o"}) == "gpt-4o"
    assert contract.resolved_model("gpt-5", environ={"CHATCONTRACT_MODEL": "gpt-4o"}) == "gpt-5"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Endpoint(base_url="api.cometapi.com"), "endpoint.base_url"),
        (lambda: Endpoint(base_url="https://x", path="chat"), "must start with '/'"),
        (lambda: Auth(env=()), "auth.env"),
        (lambda: Auth(env=("not a var",)), "not an environment variable"),
        (lambda: FallbackRoute(name="x"), "give a model, a base_url"),
        (lambda: ResponseSpec(required_paths=("choices[0.content",)), "not a response path"),
        (lambda: ErrorRule(name="x", category="nonsense"), "unknown category"),
        (lambda: ErrorRule(name="x", category="auth", status=(999,)), "from 100 to 599, got 999"),
        (lambda: ErrorRule(name="x", category="auth", message="("), "regular expression"),
        (lambda: ErrorTable(retryable=("auth",), non_retryable=("auth",)), "both retryable"),
        (lambda: ErrorTable(request_id_pattern="no group"), "exactly one capture group"),
        (lambda: Timeouts(connect_ms=0), "expected an integer from 1 to 3600000, got 0"),
        (lambda: Timeouts(connect_ms=70_000), "above total_ms"),
        (lambda: RetryPolicy(max_attempts=0), "expected an integer from 1 to 10, got 0"),
        (lambda: RetryPolicy(jitter=2), "expected a number from 0 to 1, got 2"),
        (lambda: Policy(fallback_reserve_ms=60_000), "below policy.timeouts.total_ms"),
        (lambda: Policy(usage_fields=("tokens",)), "policy.usage_fields"),
    ],
    ids=[
        "base-url-scheme",
        "path-slash",
        "auth-env-empty",
        "auth-env-name",
        "fallback-empty",
        "bad-path",
        "bad-category",
        "bad-status",
        "bad-regex",
        "retry-sets-overlap",
        "request-id-group",
        "zero-timeout",
        "phase-above-total",
        "zero-attempts",
        "jitter-range",
        "reserve-above-total",
        "usage-field",
    ],
)
def test_invalid_values_name_the_field_and_say_what_to_write(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_contract_rejects_reserved_fallback_name_and_bad_environment():
    contract = load_preset("cometapi")
    fields = {
        f: getattr(contract, f)
        for f in contract.__dataclass_fields__  # type: ignore[attr-defined]
    }
    from chatcontract.contract import Contract

    with pytest.raises(ConfigError, match="reserved"):
        Contract(**{**fields, "fallbacks": (FallbackRoute(name="primary", model="m"),)})
    with pytest.raises(ConfigError, match="expected one of staging, production, got 'prod'"):
        Contract(**{**fields, "environment": "prod"})
    assert Contract(**{**fields, "reviewed_on": dt.date(2026, 1, 1)}).reviewed_on.year == 2026


@pytest.mark.parametrize(
    ("first_byte_ms", "first_token_ms", "expected"),
    [(4000, 3000, 3000), (2000, 3000, 2000), (5000, 5000, 5000)],
    ids=["first-token-lower", "first-byte-lower", "equal"],
)
def test_a_streams_read_limit_is_the_lower_of_the_first_byte_and_first_token_limits(
    first_byte_ms, first_token_ms, expected
):
    timeouts = Timeouts(first_byte_ms=first_byte_ms, first_token_ms=first_token_ms)
    assert timeouts.stream_read_ms == expected
