import json

import pytest

from chatcontract.checks.model import CheckResult, Report, TargetInfo
from chatcontract.checks.suite import check_ids
from chatcontract.contract import contract_to_document
from chatcontract.errors import ConfigError, UsageError
from chatcontract.ops import (
    CHECKLIST_IDS,
    Artifact,
    ChecklistInputs,
    checklist_exit_code,
    evaluate_checklist,
    inspect_alerts,
    inspect_dashboard,
    read_validate_report,
    render_alert_rules,
    render_checklist_text,
    render_dashboard,
    secret_paths,
)

OK = Artifact(path="x", state="ok", detail="fine")


def make_report(contract, *, simulated=False, base_url=None, statuses=None, name=None):
    """A real validate report (``Report.to_dict``): every check passed unless overridden."""
    statuses = dict.fromkeys(check_ids(), "pass") | (statuses or {})
    checks = tuple(
        CheckResult(
            id=check_id,
            title=check_id,
            status=status,
            required=True,
            duration_ms=1.0,
            expected="as contracted",
            observed=f"{check_id} observed {status}",
        )
        for check_id, status in statuses.items()
        if status is not None
    )
    report = Report(
        version="0.1.0",
        contract_name=name or contract.name,
        provider=contract.provider,
        contract_path="chatcontract.yaml",
        reviewed_on=None,
        owner=contract.owner,
        target=TargetInfo(
            base_url=base_url or contract.endpoint.base_url,
            simulated=simulated,
            model=contract.model,
        ),
        started_at="2026-11-25T10:00:00Z",
        duration_ms=1234.0,
        checks=checks,
    )
    return report.to_dict()


def evaluate(contract, report=None, **overrides):
    inputs = {
        "contract": contract,
        "report": report or make_report(contract),
        "alerts": OK,
        "dashboards": OK,
        "review": ("passed", "contract, SDKs and documentation as validated"),
        **overrides,
    }
    return {item.id: item for item in evaluate_checklist(ChecklistInputs(**inputs))}


def test_a_ready_rollout_passes_every_line_and_exits_0(contract):
    items = evaluate(contract)
    assert list(items) == list(CHECKLIST_IDS)
    assert {item.status for item in items.values()} == {"passed"}
    assert checklist_exit_code(list(items.values())) == 0


def test_the_issue_lines_in_order():
    assert CHECKLIST_IDS == (
        "endpoint_confirmed",
        "auth_from_environment",
        "model_from_configuration",
        "request_fixture",
        "parser_contract_tested",
        "missing_auth_tested",
        "malformed_request_tested",
        "timeout_tested",
        "rate_limits_billing_reviewed",
        "logs_redacted",
        "dashboards_alerts_generated",
        "rollback_switch_named",
        "contract_review_current",
    )


def test_a_simulated_run_does_not_confirm_the_endpoint(contract):
    report = make_report(contract, simulated=True, base_url="http://127.0.0.1:8765/v1")
    items = evaluate(contract, report)
    line = items["endpoint_confirmed"]
    assert line.status == "open"
    assert "simulator" in line.evidence and "127.0.0.1:8765" in line.evidence
    assert "redaction passed against the simulator" in items["logs_redacted"].evidence
    assert checklist_exit_code(list(items.values())) == 1


def test_a_run_against_another_base_url_does_not_confirm_the_endpoint(contract):
    report = make_report(contract, base_url="https://staging-gateway.example/v1")
    line = evaluate(contract, report)["endpoint_confirmed"]
    assert line.status == "open"
    assert (
        "staging-gateway.example" in line.evidence and contract.endpoint.base_url in line.evidence
    )


def test_endpoint_confirmed_quotes_the_canary_evidence(contract):
    line = evaluate(contract)["endpoint_confirmed"]
    assert line.evidence.startswith("canary passed: canary observed pass")
    assert contract.endpoint.base_url in line.evidence


@pytest.mark.parametrize(
    ("check_id", "status", "line_id"),
    [
        ("canary", "fail", "endpoint_confirmed"),
        ("canary_repeat", "fail", "parser_contract_tested"),
        ("streaming", "fail", "parser_contract_tested"),
        ("missing_auth", "skip", "missing_auth_tested"),
        ("missing_auth", "fail", "missing_auth_tested"),
        ("malformed_request", "fail", "malformed_request_tested"),
        ("client_timeout", "fail", "timeout_tested"),
        ("redaction", "fail", "logs_redacted"),
    ],
    ids=str,
)
def test_a_check_that_did_not_pass_leaves_its_line_open(contract, check_id, status, line_id):
    items = evaluate(contract, make_report(contract, statuses={check_id: status}))
    assert items[line_id].status == "open"
    assert f"{check_id} {status}" in items[line_id].evidence  # "failed" / "skipped"
    others = [item for key, item in items.items() if key != line_id]
    assert all(item.status == "passed" for item in others)


def test_a_check_missing_from_the_run_says_to_run_the_full_suite(contract):
    report = make_report(contract, statuses={"client_timeout": None})
    line = evaluate(contract, report)["timeout_tested"]
    assert line.status == "open"
    assert "not in the last validate run" in line.evidence and "--check" in line.evidence


def test_streaming_is_not_required_when_the_contract_does_not_stream(contract_factory):
    contract = contract_factory(**{"streaming.used": False})
    report = make_report(contract, statuses={"streaming": "skip"})
    line = evaluate(contract, report)["parser_contract_tested"]
    assert line.status == "passed"
    assert "streaming not used" in line.evidence


def test_a_secret_in_the_file_leaves_auth_open_naming_the_path_only(contract):
    line = evaluate(contract, secret_paths=("request.fixture.api_key",))["auth_from_environment"]
    assert line.status == "open"
    assert "request.fixture.api_key" in line.evidence
    assert "$COMETAPI_KEY" in line.evidence


def test_secret_paths_reuses_the_contract_lint(contract):
    document = contract_to_document(contract)
    assert secret_paths(document) == ()
    secret = "sk-" + "a1B2" * 8
    document["request"]["fixture"]["api_key"] = secret
    found = secret_paths(document)
    assert found == ("request.fixture.api_key",)
    assert secret not in repr(found)


@pytest.mark.parametrize(
    "attestations",
    [
        {},
        {"rate_limits_reviewed": "ok"},
        {"billing_reviewed": "ok"},
        {"rate_limits_reviewed": " ", "billing_reviewed": "ok"},
    ],
    ids=["none", "billing-missing", "rate-limits-missing", "blank"],
)
def test_attestations_must_name_both_reviews(contract_factory, attestations):
    line = evaluate(contract_factory(attestations=attestations))["rate_limits_billing_reviewed"]
    assert line.status == "open"
    assert "attestations." in line.evidence


def test_attestations_are_quoted_as_evidence(contract):
    line = evaluate(contract)["rate_limits_billing_reviewed"]
    assert "J. Doe" in line.evidence and "balance alert" in line.evidence


def test_no_kill_switch_leaves_the_rollback_line_open(contract_factory):
    contract = contract_factory(**{"policy.kill_switch_env": None})
    line = evaluate(contract)["rollback_switch_named"]
    assert line.status == "open" and "policy.kill_switch_env" in line.evidence


def test_rollback_switch_names_the_variable_and_the_routes(contract):
    line = evaluate(contract)["rollback_switch_named"]
    assert "$CHATCONTRACT_KILL_SWITCH" in line.evidence and "smaller-model" in line.evidence


def test_model_line_mentions_the_override(contract):
    line = evaluate(contract)["model_from_configuration"]
    assert line.status == "passed" and "$CHATCONTRACT_MODEL" in line.evidence


def test_an_empty_fixture_leaves_the_fixture_line_open(contract_factory):
    line = evaluate(contract_factory(**{"request.fixture": {}}))["request_fixture"]
    assert line.status == "open"


@pytest.mark.parametrize(
    ("alerts", "dashboards"),
    [("missing", "ok"), ("ok", "missing"), ("invalid", "ok")],
    ids=["no-alerts", "no-dashboard", "foreign-alerts"],
)
def test_assets_line_needs_both_files(contract, alerts, dashboards):
    line = evaluate(
        contract,
        alerts=Artifact(path="a.yml", state=alerts, detail="has no rule group x"),
        dashboards=Artifact(path="d.json", state=dashboards, detail="d"),
    )["dashboards_alerts_generated"]
    assert line.status == "open"
    assert "chatcontract alerts" in line.evidence or "chatcontract dashboards" in line.evidence


def test_a_report_for_another_contract_is_refused(contract):
    with pytest.raises(ConfigError, match="ran contract 'other'"):
        evaluate(contract, make_report(contract, name="other"))


def test_inspect_recognises_generated_files_for_this_contract(tmp_path, contract, contract_factory):
    alerts, dashboard = tmp_path / "a.yml", tmp_path / "d.json"
    alerts.write_text(render_alert_rules(contract))
    dashboard.write_text(render_dashboard(contract))
    assert inspect_alerts(alerts, contract).state == "ok"
    assert inspect_dashboard(dashboard, contract).state == "ok"
    other = contract_factory(name="another-contract")
    assert inspect_alerts(alerts, other).state == "invalid"
    assert inspect_dashboard(dashboard, other).state == "invalid"
    assert inspect_alerts(tmp_path / "none.yml", contract).state == "missing"
    (tmp_path / "bad.json").write_text("{not json")
    assert inspect_dashboard(tmp_path / "bad.json", contract).state == "invalid"
    (tmp_path / "bad.yml").write_text("groups: [unclosed")
    assert inspect_alerts(tmp_path / "bad.yml", contract).state == "invalid"


@pytest.mark.parametrize(
    "content",
    ["[" * 100_000 + "]" * 100_000, "groups: " + "1" * 10_000, "\ufeff\ud800"],
    ids=["100k-levels", "10k-digit-number", "not-utf-8"],
)
def test_an_asset_python_cannot_hold_is_invalid_not_a_traceback(tmp_path, contract, content):
    path = tmp_path / "asset"
    path.write_bytes(content.encode("utf-8", "surrogatepass"))
    assert inspect_alerts(path, contract).state == "invalid"
    assert inspect_dashboard(path, contract).state == "invalid"


def test_an_endless_asset_is_invalid_after_the_limit(contract):
    assert inspect_alerts("/dev/zero", contract).state == "invalid"
    assert inspect_dashboard("/dev/zero", contract).state == "invalid"


def test_read_report_accepts_the_validate_record_and_a_bare_report(tmp_path, contract):
    report = make_report(contract)
    record, bare = tmp_path / "last.json", tmp_path / "bare.json"
    record.write_text(json.dumps({"report": report, "observed": {}}))
    bare.write_text(json.dumps(report))
    assert read_validate_report(record) == report
    assert read_validate_report(bare) == report


def test_a_missing_report_says_to_run_validate_first(tmp_path):
    with pytest.raises(UsageError, match="run 'chatcontract validate' first"):
        read_validate_report(tmp_path / "nothing.json")


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"report": {"checks": []}}',
        '{"target": {"base_url": "x"}, "checks": [1]}',
    ],
    ids=["not-json", "a-list", "no-target", "bad-check"],
)
def test_a_file_that_is_not_a_report_is_a_config_error(tmp_path, content):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="validate"):
        read_validate_report(path)


def test_text_rendering_marks_lines_and_counts(contract):
    items = list(evaluate(contract, secret_paths=("auth.token",)).values())
    text = render_checklist_text(items, heading="Rollout checklist")
    lines = text.splitlines()
    assert lines[0] == "Rollout checklist"
    assert lines[1].startswith("[x] Endpoint confirmed: ")
    assert lines[2].startswith("[ ] Auth through the environment / secret manager: ")
    assert lines[-1] == "12/13 done, 1 open"
