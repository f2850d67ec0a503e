import pytest

from chatcontract.contract import CATEGORIES
from chatcontract.failures.failure import FAILURE_KEYS, make_failure
from chatcontract.failures.taxonomy import CATEGORY_TABLE, OWNERS, decision_for


def test_every_category_has_an_owner_action_and_decision():
    assert set(CATEGORY_TABLE) == set(CATEGORIES)
    for info in CATEGORY_TABLE.values():
        assert info.owner in OWNERS
        assert info.action
        assert info.decision in ("retry", "fallback", "none")


def test_auth_action_is_the_runbook_first_action():
    assert CATEGORY_TABLE["auth"].action == (
        "check token rotation, environment variables and gateway header injection"
    )
    assert CATEGORY_TABLE["auth"].owner == "secrets"


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("validation", "none"),
        ("auth", "none"),
        ("model", "none"),
        ("endpoint", "none"),
        ("quota", "fallback"),
        ("rate_limit", "retry"),
        ("upstream", "retry"),
        ("contract", "fallback"),
        ("budget", "none"),
        ("context_length", "fallback"),
        ("content_policy", "none"),
    ],
    ids=str,
)
def test_default_decisions(category, expected):
    assert decision_for(category) == expected


def test_contract_sets_adjust_the_decision():
    assert decision_for("upstream", non_retryable=("upstream",)) == "fallback"
    assert decision_for("quota", retryable=("quota",)) == "retry"
    assert decision_for("auth", non_retryable=("auth",)) == "none"


def test_failure_dict_has_exactly_the_documented_keys_and_redacts():
    failure = make_failure(
        kind="api_error",
        category="auth",
        code="invalid_api_key",
        status=401,
        message="Incorrect API key provided: sk-abcdefghijklmnop1234",
    )
    data = failure.to_dict()
    assert tuple(data) == FAILURE_KEYS
    assert "sk-abcdefghijklmnop1234" not in data["message"]
    assert data["owner"] == "secrets"


def test_failure_message_is_bounded():
    failure = make_failure(kind="http", category="upstream", code="x", message="a" * 5000)
    assert len(failure.message) == 300


def test_failure_rejects_unknown_kind():
    from chatcontract.failures.failure import Failure

    with pytest.raises(ValueError, match="kind"):
        Failure(
            kind="nope",
            category="auth",
            code="x",
            status=None,
            retry="none",  # type: ignore[arg-type]
            owner="secrets",
            action="a",
            message="m",
        )


def test_the_policy_reads_the_one_retry_table_of_the_taxonomy():
    import chatcontract.policy as policy
    from chatcontract.failures import taxonomy

    assert policy.RULES is taxonomy.RULES
    assert policy.Rule is taxonomy.Rule
    assert all(taxonomy.RULES[category] is info.rule for category, info in CATEGORY_TABLE.items())


@pytest.mark.parametrize("category", sorted(CATEGORY_TABLE), ids=str)
def test_a_categorys_decision_is_its_rule_in_one_word(category):
    rule = CATEGORY_TABLE[category].rule
    expected = "retry" if rule.retries else ("fallback" if rule.then == "fallback" else "none")
    assert decision_for(category) == CATEGORY_TABLE[category].decision == expected


def test_only_the_policy_defines_a_decision():
    import chatcontract.failures as failures
    import chatcontract.policy as policy

    assert not hasattr(failures, "Decision")
    assert "Decision" in policy.__all__
