import re

import pytest
import yaml

from chatcontract.errors import ConfigError
from chatcontract.failures.taxonomy import CATEGORY_TABLE
from chatcontract.ops import (
    AlertThresholds,
    alert_rules_document,
    build_alert_rules,
    render_alert_rules,
)


def _rules(contract, thresholds=None):
    document = yaml.safe_load(render_alert_rules(contract, thresholds))
    (group,) = document["groups"]
    return group, {rule["alert"]: rule for rule in group["rules"]}


def test_one_group_named_after_the_contract(contract):
    group, _ = _rules(contract)
    assert group["name"] == "chatcontract-cometapi-chat-completions"


def test_the_rendered_file_is_the_document(contract):
    assert yaml.safe_load(render_alert_rules(contract)) == alert_rules_document(contract)


def test_every_alert_named_in_the_issue_is_present(contract):
    _, rules = _rules(contract)
    assert set(rules) == {
        "LLMResponseSchemaInvalidRate",
        "LLMRequiredPathMissingAfter200",
        "LLMAuthFailures",
        "LLMRateLimited",
        "LLMQuotaExhausted",
        "LLMClientTimeoutRate",
        "LLMLatencyNearDeadline",
        "LLMUsageMissing",
        "LLMProbeFailing",
        "LLMProbeStoreNotWritable",
        "LLMContractDrift",
        "LLMContractReviewOverdue",
    }


def test_every_alert_has_owner_category_severity_and_the_three_annotations(contract):
    _, rules = _rules(contract)
    for name, rule in rules.items():
        labels, annotations = rule["labels"], rule["annotations"]
        if name == "LLMProbeStoreNotWritable":  # about the probe, not a call (documented)
            assert (labels["category"], labels["owner"]) == ("probe_store", "sre")
        else:
            assert labels["category"] in CATEGORY_TABLE, name
            assert labels["owner"] == CATEGORY_TABLE[labels["category"]].owner, name
        assert labels["severity"] in {"critical", "warning", "info"}, name
        assert labels["contract"] == contract.name
        assert labels["team"] == "payments-platform"
        assert set(annotations) == {"summary", "description", "runbook_action"}, name
        assert all(value.strip() for value in annotations.values()), name


def test_runbook_action_is_the_taxonomy_first_action(contract):
    _, rules = _rules(contract)
    for name, rule in rules.items():
        if name in ("LLMContractReviewOverdue", "LLMProbeStoreNotWritable"):
            continue  # not a failure of a call: it names its own action (documented)
        category = rule["labels"]["category"]
        assert rule["annotations"]["runbook_action"] == CATEGORY_TABLE[category].action, name


@pytest.mark.parametrize(
    ("alert", "category", "owner"),
    [
        ("LLMAuthFailures", "auth", "secrets"),
        ("LLMRateLimited", "rate_limit", "capacity"),
        ("LLMQuotaExhausted", "quota", "capacity"),
        ("LLMClientTimeoutRate", "timeout", "sre"),
        ("LLMProbeFailing", "upstream", "sre"),
        ("LLMResponseSchemaInvalidRate", "contract", "contract"),
        ("LLMUsageMissing", "usage", "contract"),
        ("LLMContractDrift", "contract", "contract"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_alert_routes_to_the_taxonomy_owner(contract, alert, category, owner):
    _, rules = _rules(contract)
    assert rules[alert]["labels"]["category"] == category
    assert rules[alert]["labels"]["owner"] == owner


def test_quota_and_rate_limit_are_separate_alerts_on_their_own_category(contract):
    _, rules = _rules(contract)
    assert 'category="quota"' in rules["LLMQuotaExhausted"]["expr"]
    assert "rate_limit" not in rules["LLMQuotaExhausted"]["expr"]
    assert 'category="rate_limit"' in rules["LLMRateLimited"]["expr"]
    assert "quota" not in rules["LLMRateLimited"]["expr"]
    assert "billing, not capacity" in rules["LLMQuotaExhausted"]["annotations"]["description"]


def test_every_llm_selector_is_scoped_to_the_contract_provider(contract, metric_names):
    _, rules = _rules(contract)
    for name, rule in rules.items():
        for metric in metric_names(rule["expr"]):
            if not metric.startswith("llm_"):
                continue
            selectors = re.findall(rf"{metric}\{{([^}}]*)\}}", rule["expr"])
            assert selectors, f"{name}: {metric} has no label selector"
            assert all('provider="cometapi"' in s for s in selectors), name


def test_a_provider_with_quotes_is_escaped(contract_factory):
    contract = contract_factory(provider='odd"provider')
    (rule, *_) = build_alert_rules(contract)
    assert 'provider="odd\\"provider"' in rule.expr


def test_expressions_use_only_published_metric_names(contract, known_metrics, metric_names):
    _, rules = _rules(contract)
    for name, rule in rules.items():
        used = metric_names(rule["expr"])
        assert used, name
        assert used <= known_metrics, f"{name}: {used - known_metrics}"


@pytest.mark.parametrize(
    ("include_usage", "required_paths", "expected"),
    [
        (True, ["id", "choices[0].message.content"], True),
        (False, ["id", "usage.total_tokens"], True),
        (False, ["id", "choices[0].message.content"], False),
    ],
    ids=["include_usage", "usage_path_required", "usage_not_contracted"],
)
def test_missing_usage_alert_only_when_usage_is_contracted(
    contract_factory, include_usage, required_paths, expected
):
    contract = contract_factory(
        **{"streaming.include_usage": include_usage, "response.required_paths": required_paths}
    )
    names = {rule.name for rule in build_alert_rules(contract)}
    assert ("LLMUsageMissing" in names) is expected


def test_latency_threshold_comes_from_the_contract_deadline(contract_factory):
    contract = contract_factory(
        **{
            "policy.timeouts": {
                "connect_ms": 1000,
                "first_byte_ms": 5000,
                "first_token_ms": 5000,
                "total_ms": 20000,
            }
        }
    )
    _, rules = _rules(contract)
    assert rules["LLMLatencyNearDeadline"]["expr"].rstrip().endswith("> 16000")
    description = rules["LLMClientTimeoutRate"]["annotations"]["description"]
    assert "total_ms = 20000 ms" in description
    # Most client timeouts are not the deadline: a silent first byte, a stall, a connect.
    assert "first_byte_ms = 5000 ms" in description and "first_token_ms = 5000 ms" in description
    assert "code label" in description


@pytest.mark.parametrize(
    ("interval_s", "expected_for"),
    [(60, "5m"), (300, "15m"), (10, "5m")],
    ids=["1m-interval", "5m-interval", "short-interval-floor"],
)
def test_probe_alert_waits_three_probe_intervals(contract_factory, interval_s, expected_for):
    contract = contract_factory(
        **{"policy.probe": {"interval_s": interval_s, "max_tokens": 64, "daily_cost_cap_usd": 0.5}}
    )
    _, rules = _rules(contract)
    assert rules["LLMProbeFailing"]["for"] == expected_for


@pytest.mark.parametrize(
    ("interval_s", "said"),
    [
        (60, "has failed on every run for 5m (at least 5m, more than 3 probe intervals of 60 s)"),
        (300, "has failed on every run for 15m (3 probe intervals of 300 s)"),
    ],
    ids=["floor", "three-intervals"],
)
def test_probe_alert_says_how_long_it_waited_truly(contract_factory, interval_s, said):
    # 5m is not "3 intervals of 60 s": the description said so, under the 5m floor.
    contract = contract_factory(
        **{"policy.probe": {"interval_s": interval_s, "max_tokens": 64, "daily_cost_cap_usd": 0.5}}
    )
    _, rules = _rules(contract)
    assert said in rules["LLMProbeFailing"]["annotations"]["description"]


def test_custom_thresholds_are_used_and_documented_in_the_header(contract):
    thresholds = AlertThresholds(schema_invalid_ratio=0.002, window="15m")
    text = render_alert_rules(contract, thresholds)
    _, rules = _rules(contract, thresholds)
    assert "> 0.002" in rules["LLMResponseSchemaInvalidRate"]["expr"]
    assert "[15m]" in rules["LLMAuthFailures"]["expr"]
    header = text.split("groups:", 1)[0]
    assert "STARTING POINTS" in header
    assert "0.002 of requests" in header and "15m" in header
    assert all(line.startswith("#") for line in header.strip().splitlines())


def test_review_alert_compares_now_with_the_review_due_gauge(contract):
    _, rules = _rules(contract)
    expr = rules["LLMContractReviewOverdue"]["expr"]
    assert expr == 'time() > llm_contract_review_due_timestamp_seconds{provider="cometapi"}'


def test_store_alert_says_what_to_do_for_each_reason(contract):
    _, rules = _rules(contract)
    rule = rules["LLMProbeStoreNotWritable"]
    assert rule["expr"] == 'probe_store_writable{provider="cometapi"} == 0'
    assert rule["for"] == "5m"
    action = rule["annotations"]["runbook_action"]
    for reason in ("disk_full", "read_only", "locked", "io_error"):
        assert reason in action, reason
    assert "--db" in action


def test_drift_alert_fires_on_any_drift_in_an_hour(contract):
    _, rules = _rules(contract)
    expr = rules["LLMContractDrift"]["expr"]
    assert "increase(llm_contract_drift_total" in expr and "[1h]" in expr
    assert expr.endswith("> 0")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": "ten minutes"},
        {"schema_invalid_ratio": 0},
        {"rate_limit_ratio": 1.5},
        {"probe_failure_intervals": 0},
        {"drift_window": "0h"},
    ],
    ids=["bad-window", "zero-ratio", "ratio-above-1", "zero-intervals", "zero-drift-window"],
)
def test_bad_thresholds_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        AlertThresholds(**kwargs)
