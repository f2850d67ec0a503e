"""The retry table row by row, and the ``Rule`` value: what the policy reads, written out."""

from dataclasses import FrozenInstanceError

import pytest

from chatcontract.failures.taxonomy import ALL_ATTEMPTS, SILENT_CODES, Rule, rule_of


@pytest.mark.parametrize(
    ("category", "kind", "code", "row"),
    [
        ("upstream", None, None, (1, "backoff", "fallback")),
        ("timeout", None, None, (1, "backoff", "fallback")),
        ("network", None, None, (1, "backoff", "fallback")),
        ("upstream", "http", "bad_gateway", (1, "backoff", "fallback")),
        ("timeout", "transport", None, (1, "none", "fallback")),
        ("network", "transport", None, (1, "none", "fallback")),
        ("timeout", "transport", "connect_timeout", (1, "none", "fallback")),
        ("timeout", "http", None, (1, "backoff", "fallback")),
        ("rate_limit", None, None, (-1, "retry_after", "fallback")),
        ("auth", None, None, (0, "none", "raise")),
        ("quota", None, None, (0, "none", "fallback")),
        ("contract", "parser", None, (0, "none", "fallback")),
    ],
    ids=[
        "upstream",
        "timeout",
        "network",
        "upstream-http-code",
        "transport-timeout",
        "transport-network",
        "transport-timeout-other-code",
        "http-timeout",
        "rate-limit",
        "auth",
        "quota",
        "contract",
    ],
)
def test_each_row_of_the_retry_table(category, kind, code, row):
    rule = rule_of(category, kind=kind, code=code)
    assert (rule.retries, rule.wait, rule.then) == row


@pytest.mark.parametrize("code", SILENT_CODES, ids=str)
def test_a_silent_route_is_not_retried_even_when_timeouts_are_listed_retryable(code):
    for retryable in ((), ("timeout",)):
        rule = rule_of("timeout", kind="transport", code=code, retryable=retryable)
        assert (rule.retries, rule.wait, rule.then) == (0, "none", "fallback")


def test_all_attempts_is_minus_one_and_nothing_below_it_is_a_rule():
    assert ALL_ATTEMPTS == -1
    assert Rule(retries=-1).retries == ALL_ATTEMPTS
    with pytest.raises(ValueError, match="ALL_ATTEMPTS"):
        Rule(retries=-2)


def test_a_rule_is_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        Rule(1)  # type: ignore[misc]
    rule = Rule(retries=1)
    with pytest.raises(FrozenInstanceError):
        rule.retries = 2  # type: ignore[misc]


def test_rule_of_takes_everything_but_the_category_by_keyword():
    with pytest.raises(TypeError):
        rule_of("timeout", "transport")  # type: ignore[misc]
