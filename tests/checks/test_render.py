"""Report renderers: JSON shape, JUnit structure and escaping, the Markdown record, the table."""

import json
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from rich.console import Console

from chatcontract.checks.model import REPORT_KEYS, CheckResult, Report, TargetInfo
from chatcontract.checks.render import (
    FORMATS,
    render,
    render_json,
    render_junit,
    render_markdown,
    render_table,
)
from chatcontract.contract import load_preset
from chatcontract.errors import UsageError
from chatcontract.failures import make_failure

CHECK_KEYS = [
    "id",
    "title",
    "status",
    "required",
    "duration_ms",
    "expected",
    "observed",
    "failure",
    "evidence",
    "notes",
]

COMET = load_preset("cometapi")

MODEL_FAILURE = make_failure(
    kind="api_error",
    category="model",
    code="model_not_found",
    status=503,
    message="no available channel for group default and model gpt-nope (distributor)",
    request_id="20260205132859798638387SIHCnxzJ",
)

PASSED = CheckResult(
    id="basic_completion",
    title="A minimal request completes",
    status="pass",
    required=True,
    duration_ms=412.3,
    expected="HTTP 200 with every required path",
    observed="HTTP 200, finish_reason stop, 31 tokens",
    evidence={"status": 200, "request_id": "abc123"},
)
FAILED = CheckResult(
    id="model_exists",
    title="The configured model is served",
    status="fail",
    required=True,
    duration_ms=88.0,
    expected="HTTP 200",
    observed="HTTP 503 model_not_found",
    failure=MODEL_FAILURE,
    evidence={"status": 503, "latency_ms": 88},
)
WARNED = CheckResult(
    id="usage_consistent",
    title="usage adds up",
    status="warn",
    required=False,
    duration_ms=5.0,
    expected="total = prompt + completion",
    observed="total_tokens 30 != 29 + 2",
)
SKIPPED = CheckResult(
    id="stream_parity",
    title="Streaming and non-streaming agree",
    status="skip",
    required=True,
    duration_ms=0.0,
    expected="-",
    observed="skipped: the contract says streaming is not used",
)


def make_report(*checks, simulated=True, notes=()):
    return Report(
        version="0.1.0",
        contract_name="cometapi-chat-completions",
        provider="cometapi",
        contract_path="chatcontract.yaml",
        reviewed_on="2026-02-05",
        owner="payments-team",
        target=TargetInfo(
            base_url="http://127.0.0.1:8765/v1" if simulated else "https://api.cometapi.com/v1",
            simulated=simulated,
            model="gpt-4.1-nano",
        ),
        started_at="2026-02-05T13:28:59+00:00",
        duration_ms=1234.5,
        checks=checks,
        notes=tuple(notes),
    )


ALL = make_report(PASSED, FAILED, WARNED, SKIPPED, notes=["no API key configured"])


# --------------------------------------------------------------------------------------- json


def test_json_top_level_keys_are_exactly_report_keys():
    data = json.loads(render_json(ALL))
    assert list(data) == list(REPORT_KEYS)


def test_json_check_keys_are_stable():
    data = json.loads(render_json(ALL))
    assert [list(check) for check in data["checks"]] == [CHECK_KEYS] * 4


def test_json_carries_the_failure_classification_and_verdict():
    data = json.loads(render_json(ALL))
    assert data["verdict"] == "fail"
    assert data["checks"][1]["failure"]["code"] == "model_not_found"
    assert data["checks"][1]["failure"]["retry"] == "none"


def test_json_ends_with_a_newline():
    assert render_json(ALL).endswith("}\n")


# -------------------------------------------------------------------------------------- junit


def junit(report):
    return ET.fromstring(render_junit(report))


def test_junit_has_one_testcase_per_check():
    cases = junit(ALL).findall("./testsuite/testcase")
    assert [case.get("name") for case in cases] == [
        "basic_completion: A minimal request completes",
        "model_exists: The configured model is served",
        "usage_consistent: usage adds up",
        "stream_parity: Streaming and non-streaming agree",
    ]
    assert {case.get("classname") for case in cases} == {"chatcontract.cometapi"}


def test_junit_suite_counts_match_the_checks():
    suite = junit(ALL).find("testsuite")
    assert suite is not None
    assert suite.get("name") == "chatcontract: cometapi-chat-completions"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")


def test_junit_times_are_seconds():
    root = junit(ALL)
    assert root.find("testsuite").get("time") == "1.234"
    case = root.find("./testsuite/testcase[@name='basic_completion: A minimal request completes']")
    assert case.get("time") == "0.412"


def test_junit_failure_carries_classification_and_evidence():
    case = junit(ALL).findall("./testsuite/testcase")[1]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("type") == "api_error/model/model_not_found"
    assert failure.get("message") == "HTTP 503 model_not_found"
    body = failure.text
    assert "expected: HTTP 200" in body
    assert "owner: application" in body
    assert "request_id: 20260205132859798638387SIHCnxzJ" in body
    assert "  latency_ms: 88" in body


def test_junit_skip_and_warn_and_pass_elements():
    cases = junit(ALL).findall("./testsuite/testcase")
    passed, _, warned, skipped = cases
    assert list(passed) == []
    assert warned.find("failure") is None
    assert warned.find("system-out").text.startswith("WARN: total_tokens 30 != 29 + 2")
    assert skipped.find("skipped").get("message") == SKIPPED.observed


def test_junit_properties_describe_the_target():
    properties = {
        prop.get("name"): prop.get("value")
        for prop in junit(ALL).findall("./testsuite/properties/property")
    }
    assert properties["target.base_url"] == "http://127.0.0.1:8765/v1"
    assert properties["target.simulated"] == "true"
    assert properties["target.model"] == "gpt-4.1-nano"
    assert properties["verdict"] == "fail"


def test_junit_escapes_xml_special_characters():
    nasty = 'got <html> & "quotes" </failure><x> \x00\x1b[31m'
    check = CheckResult(
        id="endpoint",
        title="a <title> & more",
        status="fail",
        required=True,
        duration_ms=1.0,
        expected="JSON",
        observed=nasty,
    )
    text = render_junit(make_report(check))
    assert "<html>" not in text
    failure = ET.fromstring(text).find("./testsuite/testcase/failure")
    assert failure.get("message").startswith('got <html> & "quotes" </failure><x>')
    assert failure.get("type") == "check_failed"
    assert "\x00" not in failure.text


def test_junit_optional_failure_does_not_fail_ci():
    optional = CheckResult(
        id="latency",
        title="latency within budget",
        status="fail",
        required=False,
        duration_ms=3.0,
        expected="p95 < 2 s",
        observed="p95 3.1 s",
    )
    report = make_report(PASSED, optional)
    root = junit(report)
    assert report.verdict == "pass"
    assert root.find("testsuite").get("failures") == "0"
    assert root.find("./testsuite/testcase/failure") is None
    outs = [out.text for out in root.iter("system-out")]
    assert any(text.startswith("FAIL (not required") for text in outs)


# ----------------------------------------------------------------------------------- markdown


def markdown(report=ALL):
    return render_markdown(report, COMET)


def row_cells(text, first_cell):
    for line in text.splitlines():
        if line.startswith(f"| {first_cell} |"):
            return [cell.strip() for cell in line.strip("|").split(" | ")]
    raise AssertionError(f"no table row starting with {first_cell!r}")


def test_markdown_title_has_contract_name_and_verdict():
    assert markdown().splitlines()[0] == "# Contract record: cometapi-chat-completions (FAIL)"


def test_markdown_facts_show_endpoint_and_auth_env_names():
    text = markdown()
    assert row_cells(text, "endpoint")[1] == "`POST https://api.cometapi.com/v1/chat/completions`"
    auth = row_cells(text, "auth")[1]
    assert "`Authorization: Bearer <$COMETAPI_KEY>`" in auth
    assert "`COMETAPI_API_KEY`" in auth
    assert "`COMET_API_KEY`" in auth


def test_markdown_facts_show_model_fallback_and_policy():
    text = markdown()
    assert row_cells(text, "model")[1] == "`gpt-4.1-nano`"
    assert "`smaller-model`: model `gpt-4o-mini`" in row_cells(text, "fallbacks")[1]
    assert row_cells(text, "required request fields")[1] == "`model`, `messages`"
    assert "`usage.total_tokens`" in row_cells(text, "required response paths")[1]
    assert "2 attempt(s)" in row_cells(text, "retry policy")[1]
    assert row_cells(text, "fallback reserve")[1].startswith("5000 ms")
    assert row_cells(text, "streaming")[1] == (
        "used: yes; include_usage: yes; [DONE] required: yes"
    )
    assert row_cells(text, "target")[1].startswith("`http://127.0.0.1:8765/v1`, simulated: yes")


@pytest.mark.parametrize(
    ("rule", "category", "decision"),
    [
        ("invalid_request", "validation", "none"),
        ("model_not_found", "model", "none"),
        ("insufficient_quota", "quota", "fallback"),
        ("rate_limited", "rate_limit", "retry"),
        ("upstream_error", "upstream", "retry"),
    ],
    ids=["invalid_request", "model_not_found", "quota", "rate_limited", "upstream"],
)
def test_markdown_error_rules_table(rule, category, decision):
    cells = row_cells(markdown(), f"`{rule}`")
    assert cells[2:4] == [category, decision]


def test_markdown_error_rule_match_is_described():
    text = markdown()
    assert row_cells(text, "`invalid_request`")[1] == "code `invalid_request`"
    assert row_cells(text, "`gateway_timeout`")[1] == "status 504, 524"
    assert row_cells(text, "`html_on_api_path`")[1] == "body html"


def test_markdown_has_a_results_row_per_check():
    text = markdown()
    assert row_cells(text, "`basic_completion`")[2] == "PASS"
    assert row_cells(text, "`model_exists`")[2] == "FAIL"
    assert row_cells(text, "`usage_consistent`")[2:4] == ["WARN", "no"]
    assert row_cells(text, "`stream_parity`")[2] == "SKIP"


def test_markdown_failure_section_classifies_each_failed_check():
    failures = markdown().split("## Failures", 1)[1].split("## Notes", 1)[0]
    assert "### `model_exists`: The configured model is served" in failures
    assert "- classification: `api_error/model/model_not_found` (HTTP 503)" in failures
    assert "- owner: application" in failures
    assert "- request id: `20260205132859798638387SIHCnxzJ`" in failures
    assert "usage_consistent" not in failures


def test_markdown_notes_section_lists_report_notes():
    notes = markdown().split("## Notes", 1)[1]
    assert "- no API key configured" in notes


def test_markdown_without_failures_says_none():
    text = markdown(make_report(PASSED))
    assert text.split("## Failures", 1)[1].split("## Check notes")[0].strip() == "None."


def test_markdown_escapes_pipes_in_table_cells():
    check = CheckResult(
        id="pipes",
        title="a | b",
        status="pass",
        required=True,
        duration_ms=1.0,
        expected="-",
        observed="left | right",
    )
    text = markdown(make_report(check))
    line = next(line for line in text.splitlines() if line.startswith("| `pipes` |"))
    assert "a \\| b" in line
    assert "left \\| right" in line
    assert line.count(" | ") == 5  # six cells: the escaped pipes do not split the row


def test_markdown_never_contains_a_secret_value(monkeypatch):
    monkeypatch.setenv("COMETAPI_KEY", "sk-secret-value-123")
    assert "sk-secret-value-123" not in markdown()


# -------------------------------------------------------------------------------------- table


def table_text(report):
    console = Console(record=True, width=120)
    render_table(report, console=console)
    return console.export_text()


def test_table_says_simulated_at_the_top_and_shows_notes():
    lines = table_text(ALL).splitlines()
    assert "SIMULATED" in lines[1]
    assert "embedded simulator http://127.0.0.1:8765/v1" in lines[1]
    assert lines[2] == "no API key configured"


def test_table_live_target_is_not_called_simulated():
    text = table_text(make_report(PASSED, simulated=False))
    assert "SIMULATED" not in text
    assert "target: https://api.cometapi.com/v1" in text


def test_table_shows_every_check_and_the_verdict():
    text = table_text(ALL)
    for check in ALL.checks:
        assert check.id in text
    assert text.rstrip().splitlines()[-1].startswith("verdict: FAIL  4 checks")
    assert "1 passed, 1 failed, 1 warned, 1 skipped" in text


def test_table_explains_failures_below_the_table():
    text = table_text(ALL)
    assert "api_error/model/model_not_found HTTP 503" in text
    assert "owner application, retry none: check the configured model name" in text


def test_table_truncates_long_observed_text():
    check = CheckResult(
        id="long",
        title="long",
        status="pass",
        required=True,
        duration_ms=1.0,
        expected="-",
        observed="x" * 1000,
    )
    text = table_text(make_report(check))
    assert "x" * 200 not in text.replace("\n", "").replace(" ", "")
    assert "…" in text


def test_table_does_not_interpret_markup_in_observed_text():
    check = CheckResult(
        id="markup",
        title="markup",
        status="pass",
        required=True,
        duration_ms=1.0,
        expected="-",
        observed="[bold]literal[/bold]",
    )
    assert "[bold]literal[/bold]" in table_text(make_report(check))


# ----------------------------------------------------------------------------------- dispatch


@pytest.mark.parametrize("fmt", ["json", "junit", "markdown"])
def test_render_returns_text_for_file_formats(fmt):
    console = Console(record=True, width=120)
    text = render(ALL, COMET, fmt, console=console)
    assert text
    assert console.export_text() == ""


def test_render_table_prints_and_returns_none():
    console = Console(record=True, width=120)
    assert render(ALL, COMET, "table", console=console) is None
    assert "verdict: FAIL" in console.export_text()


def test_render_rejects_an_unknown_format():
    with pytest.raises(UsageError, match="use one of table, json, junit, markdown"):
        render(ALL, COMET, "yaml", console=Console(record=True))


def test_formats_are_the_documented_ones():
    assert FORMATS == ("table", "json", "junit", "markdown")


# -------------------------------------------------------------------------------------- notes

USAGE_NOTE = "usage: completion_tokens 20 > max_tokens 16 (usage_consistency counts it)"
NOTED_PASS = replace(PASSED, notes=(USAGE_NOTE, "no request id: the provider sent none"))
NOTED_FAIL = replace(FAILED, notes=("1 x HTTP 429 rate limited; waited 1.0 s",))
NOTED = make_report(NOTED_PASS, NOTED_FAIL)


def test_json_lists_each_checks_notes():
    checks = json.loads(render_json(NOTED))["checks"]
    assert checks[0]["notes"] == list(NOTED_PASS.notes)
    assert checks[1]["notes"] == list(NOTED_FAIL.notes)
    assert json.loads(render_json(ALL))["checks"][0]["notes"] == []


def test_junit_puts_a_passing_checks_notes_in_system_out_and_a_failures_in_its_body():
    cases = junit(NOTED).findall(".//testcase")
    assert cases[0].find("failure") is None
    assert cases[0].find("system-out").text.splitlines() == [f"note: {n}" for n in NOTED_PASS.notes]
    assert "note: 1 x HTTP 429 rate limited" in cases[1].find("failure").text


def test_junit_passing_check_without_notes_has_no_system_out():
    [case] = junit(make_report(PASSED)).findall(".//testcase")
    assert case.find("system-out") is None


def test_markdown_lists_check_notes_and_keeps_them_in_the_failure_section():
    text = render_markdown(NOTED, COMET)
    notes = text.split("## Check notes", 1)[1].split("## Notes", 1)[0]
    assert f"- `basic_completion`: {USAGE_NOTE}" in notes
    assert "- `model_exists`: 1 x HTTP 429 rate limited" in notes
    failures = text.split("## Failures", 1)[1].split("## Check notes", 1)[0]
    assert "- note: 1 x HTTP 429 rate limited" in failures
    assert render_markdown(ALL, COMET).split("## Check notes", 1)[1].count("None.") >= 1


def test_table_prints_each_note_under_its_check():
    text = table_text(NOTED)
    assert f"note basic_completion: {USAGE_NOTE}" in text
    assert "note model_exists: 1 x HTTP 429 rate limited; waited 1.0 s" in text
    assert text.rstrip().splitlines()[-1].startswith("verdict: FAIL")
