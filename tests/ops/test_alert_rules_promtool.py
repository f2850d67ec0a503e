"""The generated rules against the real promtool (Debian package ``prometheus``).

Skipped only when promtool is missing AND ``CHATCONTRACT_REQUIRE_PROMTOOL`` is unset; CI sets
it, so a CI machine without promtool fails here instead of silently skipping.
"""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from chatcontract.ops import build_dashboard, render_alert_rules

LLM = {"provider": "cometapi", "endpoint": "chat_completions", "stream": "false"}


@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CHATCONTRACT_REQUIRE_PROMTOOL"):
            pytest.fail(
                "promtool not found and CHATCONTRACT_REQUIRE_PROMTOOL is set: "
                "install the Debian package prometheus"
            )
        pytest.skip("promtool not installed (Debian package prometheus)")
    return path


def _run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def rules_file(tmp_path, contract):
    path = tmp_path / "chatcontract-alerts.yml"
    path.write_text(render_alert_rules(contract), encoding="utf-8")
    return path


def _series(name, **labels):
    body = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return f"{name}{{{body}}}"


def _llm(name, **labels):
    return _series(name, **{**LLM, "route": "primary", **labels})


def _expected(rules_file, alert, labels, value_text=None):
    """The alert promtool must produce: the rule's labels plus the series', annotations
    expanded the way Prometheus expands them."""
    document = yaml.safe_load(rules_file.read_text())
    rule = next(r for r in document["groups"][0]["rules"] if r["alert"] == alert)

    def expand(template):
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
        if value_text is not None:
            text = re.sub(r"\{\{ \$value \| \w+ \}\}", value_text, text)
        assert "{{" not in text, text
        return text

    return {
        "exp_labels": {**rule["labels"], **labels},
        "exp_annotations": {key: expand(value) for key, value in rule["annotations"].items()},
    }


def _promtool_test(promtool, rules_file, tests):
    test_file = rules_file.with_name("alerts_test.yml")
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": [rules_file.name], "evaluation_interval": "1m", "tests": tests},
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    result = _run(promtool, "test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules_accepts_the_generated_file(promtool, rules_file):
    result = _run(promtool, "check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "changes",
    [
        {"streaming.include_usage": False, "response.required_paths": ["id"]},
        {"owner": "", "reviewed_on": None, "provider": 'odd"provider'},
    ],
    ids=["no-usage-alert", "no-owner-odd-provider"],
)
def test_promtool_check_rules_accepts_variants(promtool, tmp_path, contract_factory, changes):
    path = tmp_path / "variant.yml"
    path.write_text(render_alert_rules(contract_factory(**changes)), encoding="utf-8")
    result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_auth_failure_after_a_deploy_fires_at_once_for_this_provider_only(promtool, rules_file):
    labels = {
        "provider": "cometapi",
        "model": "gpt-4.1-nano",
        "route": "primary",
        "status_code": "401",
    }
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {
                    "series": _llm(
                        "llm_error_total",
                        model="gpt-4.1-nano",
                        kind="api_error",
                        category="auth",
                        status_code="401",
                    ),
                    "values": "0 0 0 0 0 1 3 3 3 3 3",
                },
                # Another provider's auth failures and this provider's 429s are not ours.
                {
                    "series": _llm(
                        "llm_error_total",
                        provider="openai",
                        model="gpt-4.1-nano",
                        kind="api_error",
                        category="auth",
                        status_code="401",
                    ),
                    "values": "0 1 2 3 4 5 6 7 8 9 10",
                },
                {
                    "series": _llm(
                        "llm_error_total",
                        model="gpt-4.1-nano",
                        kind="api_error",
                        category="rate_limit",
                        status_code="429",
                    ),
                    "values": "0 1 2 3 4 5 6 7 8 9 10",
                },
            ],
            "alert_rule_test": [
                {"eval_time": "3m", "alertname": "LLMAuthFailures", "exp_alerts": []},
                {
                    "eval_time": "7m",
                    "alertname": "LLMAuthFailures",
                    "exp_alerts": [_expected(rules_file, "LLMAuthFailures", labels)],
                },
            ],
        }
    ]
    _promtool_test(promtool, rules_file, tests)


def test_the_first_auth_failure_of_a_new_series_fires_too(promtool, rules_file):
    # A new pod after a deploy exposes llm_error_total already at 1: increase() alone misses it.
    labels = {
        "provider": "cometapi",
        "model": "gpt-4.1-nano",
        "route": "primary",
        "status_code": "401",
    }
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {
                    "series": _llm(
                        "llm_error_total",
                        model="gpt-4.1-nano",
                        kind="api_error",
                        category="auth",
                        status_code="401",
                        instance="pod-2",
                    ),
                    "values": "_ _ _ 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
                },
            ],
            "alert_rule_test": [
                {
                    "eval_time": "5m",
                    "alertname": "LLMAuthFailures",
                    "exp_alerts": [_expected(rules_file, "LLMAuthFailures", labels)],
                },
                # Ten minutes later the series is old and flat: the alert resolves.
                {"eval_time": "15m", "alertname": "LLMAuthFailures", "exp_alerts": []},
            ],
        }
    ]
    _promtool_test(promtool, rules_file, tests)


def test_schema_invalid_rate_above_threshold_fires_after_five_minutes(promtool, rules_file):
    def model_series(model, invalid_per_minute):
        return [
            {"series": _llm("llm_request_total", model=model), "values": "0+10x40"},
            {
                "series": _llm("llm_response_schema_invalid_total", model=model),
                "values": f"0+{invalid_per_minute}x40",
            },
        ]

    labels = {"provider": "cometapi", "model": "bad-model", "route": "primary"}
    tests = [
        {
            "interval": "1m",
            "input_series": model_series("bad-model", 1) + model_series("good-model", 0),
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "LLMResponseSchemaInvalidRate", "exp_alerts": []},
                {
                    "eval_time": "20m",
                    "alertname": "LLMResponseSchemaInvalidRate",
                    "exp_alerts": [
                        _expected(
                            rules_file, "LLMResponseSchemaInvalidRate", labels, value_text="10%"
                        )
                    ],
                },
            ],
        }
    ]
    _promtool_test(promtool, rules_file, tests)


def test_quota_refusals_fire_the_quota_alert_not_the_rate_limit_one(promtool, rules_file):
    labels = {"provider": "cometapi", "model": "gpt-4.1-nano", "route": "primary"}
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {"series": _llm("llm_request_total", model="gpt-4.1-nano"), "values": "0+10x30"},
                {
                    "series": _llm(
                        "llm_error_total",
                        model="gpt-4.1-nano",
                        kind="api_error",
                        category="quota",
                        status_code="429",
                    ),
                    "values": "0+5x30",
                },
            ],
            "alert_rule_test": [
                {
                    "eval_time": "25m",
                    "alertname": "LLMQuotaExhausted",
                    "exp_alerts": [_expected(rules_file, "LLMQuotaExhausted", labels)],
                },
                {"eval_time": "25m", "alertname": "LLMRateLimited", "exp_alerts": []},
            ],
        }
    ]
    _promtool_test(promtool, rules_file, tests)


def test_probe_failing_fires_unless_the_probe_is_paused(promtool, rules_file):
    failing = {"series": _series("probe_success", provider="cometapi", probe="canary"),
               "values": "0x20"}  # fmt: skip
    labels = {"provider": "cometapi", "probe": "canary"}
    tests = [
        {
            "interval": "1m",
            "input_series": [failing],
            "alert_rule_test": [
                {"eval_time": "3m", "alertname": "LLMProbeFailing", "exp_alerts": []},
                {
                    "eval_time": "10m",
                    "alertname": "LLMProbeFailing",
                    "exp_alerts": [_expected(rules_file, "LLMProbeFailing", labels)],
                },
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                failing,
                {
                    "series": _series("probe_paused", provider="cometapi", reason="cost_cap"),
                    "values": "1x20",
                },
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "LLMProbeFailing", "exp_alerts": []},
            ],
        },
    ]
    _promtool_test(promtool, rules_file, tests)


def test_probe_failing_is_this_contracts_probe_alone(promtool, rules_file):
    # One Prometheus scraping the probes of two contracts: another provider's failing probe
    # does not page for this one, and another provider's pause does not silence this one.
    other_failing = {
        "series": _series("probe_success", provider="openai", probe="canary"),
        "values": "0x20",
    }
    failing = {"series": _series("probe_success", provider="cometapi", probe="canary"),
               "values": "0x20"}  # fmt: skip
    other_paused = {
        "series": _series("probe_paused", provider="openai", reason="daily_cost_cap"),
        "values": "1x20",
    }
    labels = {"provider": "cometapi", "probe": "canary"}
    tests = [
        {
            "interval": "1m",
            "input_series": [other_failing],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "LLMProbeFailing", "exp_alerts": []},
            ],
        },
        {
            "interval": "1m",
            "input_series": [failing, other_paused],
            "alert_rule_test": [
                {
                    "eval_time": "10m",
                    "alertname": "LLMProbeFailing",
                    "exp_alerts": [_expected(rules_file, "LLMProbeFailing", labels)],
                },
            ],
        },
    ]
    _promtool_test(promtool, rules_file, tests)


def test_store_not_writable_fires_after_five_minutes_of_refused_writes(promtool, rules_file):
    # As ProbeMetrics exports it (provider), with the labels a scrape adds.
    labels = {"provider": "cometapi", "instance": "probe-1:9464", "job": "chatcontract-probe"}
    refused = {"series": _series("probe_store_writable", **labels), "values": "1 1 0x20"}
    tests = [
        {
            "interval": "1m",
            "input_series": [refused],
            "alert_rule_test": [
                {"eval_time": "5m", "alertname": "LLMProbeStoreNotWritable", "exp_alerts": []},
                {
                    "eval_time": "8m",
                    "alertname": "LLMProbeStoreNotWritable",
                    "exp_alerts": [_expected(rules_file, "LLMProbeStoreNotWritable", labels)],
                },
            ],
        }
    ]
    _promtool_test(promtool, rules_file, tests)


def test_store_not_writable_stays_quiet_for_a_blip_or_another_provider(promtool, rules_file):
    # A lock held for two scrapes, then writes resume; another contract's probe on a full disk.
    labels = {"instance": "probe-1:9464", "job": "chatcontract-probe"}
    blip = {
        "series": _series("probe_store_writable", provider="cometapi", **labels),
        "values": "1 1 0 0 1x20",
    }
    other = {
        "series": _series("probe_store_writable", provider="openai", **labels),
        "values": "0x20",
    }
    tests = [
        {
            "interval": "1m",
            "input_series": [blip, other],
            "alert_rule_test": [
                {"eval_time": eval_time, "alertname": "LLMProbeStoreNotWritable", "exp_alerts": []}
                for eval_time in ("3m", "8m", "15m")
            ],
        }
    ]
    _promtool_test(promtool, rules_file, tests)


def test_drift_fires_on_the_series_the_probe_exports_and_names_it(promtool, rules_file):
    # llm_contract_drift_total as ProbeMetrics exports it: provider and kind, no model label.
    drift = {
        "series": _series("llm_contract_drift_total", provider="cometapi", kind="new_field"),
        "values": "0 0 1 1 1",
    }
    labels = {"provider": "cometapi", "kind": "new_field"}
    expected = _expected(rules_file, "LLMContractDrift", labels)
    description = expected["exp_annotations"]["description"]
    assert description.startswith("drift of kind new_field from the accepted baseline in ")
    assert "  " not in description  # no label left empty in the text
    tests = [
        {
            "interval": "1m",
            "input_series": [drift],
            "alert_rule_test": [
                {"eval_time": "1m", "alertname": "LLMContractDrift", "exp_alerts": []},
                {"eval_time": "3m", "alertname": "LLMContractDrift", "exp_alerts": [expected]},
            ],
        }
    ]
    _promtool_test(promtool, rules_file, tests)


def test_review_overdue_fires_once_the_due_date_has_passed(promtool, rules_file):
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {
                    "series": _series(
                        "llm_contract_review_due_timestamp_seconds", provider="cometapi"
                    ),
                    "values": "120x10",
                },
            ],
            "alert_rule_test": [
                {"eval_time": "1m", "alertname": "LLMContractReviewOverdue", "exp_alerts": []},
                {
                    "eval_time": "5m",
                    "alertname": "LLMContractReviewOverdue",
                    "exp_alerts": [
                        _expected(rules_file, "LLMContractReviewOverdue", {"provider": "cometapi"})
                    ],
                },
            ],
        }
    ]
    _promtool_test(promtool, rules_file, tests)


def test_every_dashboard_query_parses_in_promtool(promtool, tmp_path, contract):
    grafana_variables = {"$__rate_interval": "5m", "$model": ".*", "$route": ".*"}
    rules = []
    for panel in build_dashboard(contract)["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in grafana_variables.items():
                expr = expr.replace(variable, value)
            rules.append(
                {"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": expr}
            )
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
