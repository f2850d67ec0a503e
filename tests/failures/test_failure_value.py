"""The Failure value and the taxonomy tables, row by row."""

import pytest

from chatcontract.failures import CATEGORY_TABLE, KINDS, OWNERS, Failure, make_failure
from chatcontract.failures.taxonomy import decision_for

CATEGORY_ROWS = {
    "auth": ("secrets", "none"),
    "validation": ("application", "none"),
    "model": ("application", "none"),
    "rate_limit": ("capacity", "retry"),
    "quota": ("capacity", "fallback"),
    "upstream": ("sre", "retry"),
    "timeout": ("sre", "retry"),
    "network": ("sre", "retry"),
    "endpoint": ("contract", "none"),
    "contract": ("contract", "fallback"),
    "content": ("application", "fallback"),
    "usage": ("contract", "fallback"),
    "budget": ("application", "none"),
    "context_length": ("application", "fallback"),
    "content_policy": ("application", "none"),
}


@pytest.mark.parametrize(("category", "row"), list(CATEGORY_ROWS.items()), ids=list(CATEGORY_ROWS))
def test_each_category_row_names_its_owner_and_default_decision(category, row):
    info = CATEGORY_TABLE[category]
    assert (info.owner, info.decision) == row
    failure = make_failure(kind="http", category=category, code="c", message="m")
    assert (failure.owner, failure.retry, failure.action) == (*row, info.action)


def test_the_category_table_has_exactly_the_documented_rows():
    assert set(CATEGORY_TABLE) == set(CATEGORY_ROWS)


def test_kinds_and_owners_are_the_documented_vocabulary():
    assert KINDS == ("transport", "http", "api_error", "parser", "semantic", "budget")
    assert OWNERS == ("secrets", "application", "capacity", "sre", "contract")


@pytest.mark.parametrize(
    ("category", "retryable", "non_retryable", "expected"),
    [
        ("validation", ("validation",), (), "retry"),
        ("upstream", (), ("upstream",), "fallback"),
        ("contract", (), ("contract",), "fallback"),
        ("auth", (), ("auth",), "none"),
        ("upstream", (), (), "retry"),
    ],
    ids=["promoted", "demoted-retry", "demoted-fallback", "demoted-none", "default"],
)
def test_contract_sets_adjust_the_default_decision(category, retryable, non_retryable, expected):
    assert decision_for(category, retryable=retryable, non_retryable=non_retryable) == expected


@pytest.mark.parametrize(
    ("length", "kept"),
    [(299, 299), (300, 300), (301, 300)],
    ids=["below", "at-limit", "above"],
)
def test_a_message_is_cut_only_above_300_characters(length, kept):
    message = make_failure(kind="http", category="upstream", code="x", message="a" * length).message
    assert len(message) == kept
    assert message.endswith("…") == (length > 300)


def test_a_message_has_its_whitespace_collapsed_and_secrets_redacted():
    failure = make_failure(
        kind="http",
        category="auth",
        code="x",
        message="  bad\n\tkey   cc-secret-value-0001 ",
        secrets=("cc-secret-value-0001",),
    )
    assert "cc-secret-value-0001" not in failure.message
    assert failure.message.startswith("bad key ")
    assert "  " not in failure.message and "\n" not in failure.message


def test_an_explicit_decision_overrides_the_categorys_default():
    failure = make_failure(kind="http", category="upstream", code="x", message="m", decision="none")
    assert failure.retry == "none"
    assert make_failure(kind="http", category="upstream", code="x", message="m").retry == "retry"


def test_str_names_kind_category_code_status_and_request_id():
    failure = make_failure(
        kind="api_error",
        category="model",
        code="model_not_found",
        message="no channel",
        status=503,
        request_id="rid-1",
    )
    assert str(failure) == "api_error/model/model_not_found HTTP 503: no channel (request id rid-1)"
    bare = make_failure(kind="transport", category="network", code="dns", message="no name")
    assert str(bare) == "transport/network/dns: no name"
    assert (bare.status, bare.request_id) == (None, None)


def test_to_dict_carries_every_value():
    failure = make_failure(
        kind="api_error", category="quota", code="q", message="m", status=429, request_id="r"
    )
    assert failure.to_dict() == {
        "kind": "api_error",
        "category": "quota",
        "code": "q",
        "status": 429,
        "retry": "fallback",
        "owner": "capacity",
        "action": CATEGORY_TABLE["quota"].action,
        "message": "m",
        "request_id": "r",
    }


def test_a_failure_rejects_an_unknown_category():
    with pytest.raises(ValueError, match="category"):
        Failure(
            kind="http",
            category="weather",
            code="x",
            status=None,
            retry="none",
            owner="sre",
            action="a",
            message="m",
        )
