import json

import pytest
import yaml

from chatcontract.checks.model import CheckResult, Report, TargetInfo
from chatcontract.checks.suite import check_ids
from chatcontract.ops import CHECKLIST_IDS, dashboard_uid


def _write_report(path, contract, *, simulated=False, validated=None):
    checks = tuple(
        CheckResult(
            id=check_id,
            title=check_id,
            status="pass",
            required=True,
            duration_ms=1.0,
            expected="e",
            observed="ok",
        )
        for check_id in check_ids()
    )
    report = Report(
        version="0.1.0",
        contract_name=contract.name,
        provider=contract.provider,
        contract_path=None,
        reviewed_on=None,
        owner="",
        target=TargetInfo(
            base_url="http://127.0.0.1:9/v1" if simulated else contract.endpoint.base_url,
            simulated=simulated,
            model=contract.model,
        ),
        started_at="2026-11-25T10:00:00Z",
        duration_ms=1.0,
        checks=checks,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"report": report.to_dict(), "observed": {}, "verdict": report.verdict}
    if validated is not None:
        record["validated"] = validated
    path.write_text(json.dumps(record))


def test_alerts_writes_the_default_file_in_the_working_directory(
    cli, contract_file, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("alerts", "--contract", str(contract_file))
    assert code == 0 and err == ""
    written = yaml.safe_load((tmp_path / "chatcontract-alerts.yml").read_text())
    assert written["groups"][0]["name"] == "chatcontract-cometapi-chat-completions"
    assert out.startswith("wrote chatcontract-alerts.yml: 12 alerts")


def test_alerts_to_stdout(cli, contract_file):
    code, out, _ = cli("alerts", "--contract", str(contract_file), "--output", "-")
    assert code == 0
    assert out.startswith("# Prometheus alerting rules")
    assert yaml.safe_load(out)["groups"]


def test_dashboards_writes_the_dashboard(cli, contract_file, tmp_path):
    target = tmp_path / "dash.json"
    code, out, _ = cli("dashboards", "--contract", str(contract_file), "--output", str(target))
    assert code == 0
    dashboard = json.loads(target.read_text())
    assert dashboard["uid"] == dashboard_uid("cometapi-chat-completions")
    assert dashboard["uid"] in out
    assert not target.with_name("dash.json.tmp").exists()


@pytest.mark.parametrize("command", ["alerts", "dashboards", "checklist"])
def test_a_missing_contract_is_one_line_exit_2(cli, tmp_path, command):
    code, _out, err = cli(command, "--contract", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert err.count("\n") == 1 and "nope.yaml" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["alerts", "dashboards"])
def test_an_output_in_a_missing_directory_is_one_line_exit_2(cli, contract_file, tmp_path, command):
    code, _, err = cli(
        command,
        "--contract",
        str(contract_file),
        "--output",
        str(tmp_path / "no" / "such" / "file"),
    )
    assert code == 2
    assert err.count("\n") == 1 and "does not exist" in err


def test_checklist_without_a_report_says_to_run_validate_first(cli, contract_file, tmp_path):
    code, out, err = cli(
        "checklist",
        "--contract",
        str(contract_file),
        "--report",
        str(tmp_path / ".chatcontract" / "last-validate.json"),
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "run 'chatcontract validate' first" in err


def test_checklist_all_passed_exits_0(cli, contract, contract_file, tmp_path, monkeypatch):
    from chatcontract.ops._docs_fetch import FetchedDocument
    from chatcontract.ops.review import validated_facts

    monkeypatch.chdir(tmp_path)
    page = FetchedDocument(url=contract.reference_url, final_url=contract.reference_url,
                           content_type="text/html", body=b"<p>Chat completions</p>")  # fmt: skip
    validated = validated_facts(
        contract, str(contract_file), simulated=False, fetch=lambda url: page
    )
    _write_report(tmp_path / ".chatcontract" / "last-validate.json", contract, validated=validated)
    assert cli("alerts", "--contract", str(contract_file))[0] == 0
    assert cli("dashboards", "--contract", str(contract_file))[0] == 0
    code, out, _ = cli("checklist", "--contract", str(contract_file))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("Rollout checklist for cometapi-chat-completions (cometapi)")
    assert sum(line.startswith("[x] ") for line in lines) == len(CHECKLIST_IDS)
    assert lines[-1] == f"{len(CHECKLIST_IDS)}/{len(CHECKLIST_IDS)} done, 0 open"


def test_checklist_json_from_a_simulated_run_is_open_and_exits_1(
    cli, contract, contract_file, tmp_path
):
    report = tmp_path / "last.json"
    _write_report(report, contract, simulated=True)
    code, out, _ = cli(
        "checklist",
        "--contract",
        str(contract_file),
        "--report",
        str(report),
        "--alerts",
        str(tmp_path / "none.yml"),
        "--dashboards",
        str(tmp_path / "none.json"),
        "--format",
        "json",
    )
    assert code == 1
    items = json.loads(out)
    assert [item["id"] for item in items] == list(CHECKLIST_IDS)
    assert all(set(item) == {"id", "title", "status", "evidence"} for item in items)
    status = {item["id"]: item["status"] for item in items}
    assert status["endpoint_confirmed"] == "open"
    assert status["dashboards_alerts_generated"] == "open"
    assert status["logs_redacted"] == "passed"
    assert {item["status"] for item in items} == {"passed", "open"}


def test_checklist_flags_a_secret_written_in_the_contract(cli, contract, contract_file, tmp_path):
    text = contract_file.read_text().replace(
        "max_tokens: 16", "max_tokens: 16\n    api_key: sk-" + "Zx9" * 8, 1
    )
    contract_file.write_text(text)
    report = tmp_path / "last.json"
    _write_report(report, contract)
    code, out, _ = cli("checklist", "--contract", str(contract_file), "--report", str(report))
    assert code == 1
    line = next(line for line in out.splitlines() if "Auth through" in line)
    assert line.startswith("[ ]") and "request.fixture.api_key" in line
    assert "sk-Zx9" not in out
