"""`chatcontract validate` end to end against the real simulator over loopback."""

import json
import xml.etree.ElementTree as ET

import httpx2
import orjson
import pytest
import yaml

from chatcontract.checks.context import SuiteOptions
from chatcontract.checks.suite import CHECKS
from chatcontract.cli import main
from chatcontract.contract import load_preset
from chatcontract.target import Target

QUICK = ("--canary-runs", "3", "--latency-samples", "2")

#: A good non-streamed answer of the model the tests' target uses.
_COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4.1-nano",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


def validate(capsys, *argv):
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def statuses(report):
    return {check["id"]: check["status"] for check in report["checks"]}


def by_id(report, check_id):
    return next(check for check in report["checks"] if check["id"] == check_id)


def test_default_suite_passes_against_the_simulator_and_says_it_is_simulated(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # no ./chatcontract.yaml, no key: the embedded simulator
    code, out, _ = validate(capsys, *QUICK, "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert report["verdict"] == "pass"
    assert report["target"]["simulated"] is True
    assert report["target"]["base_url"].startswith("http://127.0.0.1:")
    expected_ids = [spec.id for spec in CHECKS if not spec.opt_in]
    assert [c["id"] for c in report["checks"]] == expected_ids
    assert all(
        status == "pass" for cid, status in statuses(report).items() if cid != "contract_lint"
    )
    assert statuses(report)["contract_lint"] == "warn"
    assert report["summary"] == {
        "passed": len(expected_ids) - 1,
        "failed": 0,
        "warned": 1,
        "skipped": 0,
    }
    canary = by_id(report, "canary")
    assert canary["evidence"]["request_id"]
    assert canary["evidence"]["model"] == "gpt-4.1-nano-2025-04-14"
    assert by_id(report, "canary_repeat")["observed"].startswith("3/3 parsed")


def test_negative_checks_pass_with_cometapis_documented_statuses(capsys):
    code, out, _ = validate(
        capsys,
        "--simulate",
        "--format",
        "json",
        "--check",
        "malformed_request",
        "--check",
        "unsupported_model",
        "--check",
        "malformed_json",
        "--check",
        "missing_auth",
        "--check",
        "invalid_auth",
    )
    report = json.loads(out)
    assert code == 0
    assert "500 validation/invalid_request" in by_id(report, "malformed_request")["observed"]
    assert "documented" in by_id(report, "malformed_request")["observed"]
    assert "503 model/model_not_found" in by_id(report, "unsupported_model")["observed"]
    assert by_id(report, "missing_auth")["evidence"]["classification"].startswith("api_error/auth/")


@pytest.mark.parametrize(
    ("scenario", "check", "classification"),
    [
        ("cut_stream", "streaming", ("transport", "network", "stream_dropped")),
        ("no_done", "streaming", ("parser", "contract", "stream_no_done")),
        ("done_without_finish_reason", "streaming", ("parser", "contract", "stream_truncated")),
        ("malformed_chunk", "streaming", ("parser", "contract", "malformed_chunk")),
        ("inband_error_chunk", "streaming", ("api_error", None, None)),
        ("empty_choices", "canary", ("parser", "contract", "missing_choices")),
        ("bad_json", "canary", ("parser", "contract", "invalid_json")),
        ("error_in_200", "canary", ("api_error", None, None)),
        ("wrong_types", "canary", ("parser", "contract", "wrong_type")),
        ("empty_content", "canary", ("semantic", "content", "empty_content")),
        ("drift_missing_field", "canary", ("parser", "contract", None)),
        ("rate_limit", "canary", ("http", "rate_limit", "rate_limited")),
        ("quota_exhausted", "canary", ("api_error", "quota", "insufficient_user_quota")),
        ("server_error", "canary", ("api_error", "upstream", None)),
        ("cloudflare_524", "canary", ("http", "upstream", "gateway_timeout")),
        ("html_error", "canary", ("http", None, None)),
        ("reset", "canary", ("transport", "network", None)),
        ("wrong_types", "canary_repeat", ("parser", "contract", "wrong_type")),
        ("usage_mismatch", "usage_consistency", ("semantic", "usage", "usage_mismatch")),
        ("missing_usage", "usage_consistency", ("parser", "usage", "missing_usage")),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_broken_provider_fails_the_check_that_guards_it(
    capsys, scenario, check, classification
):
    code, out, _ = validate(
        capsys, "--simulate", "--scenario", scenario, "--check", check, *QUICK, "--format", "json"
    )
    report = json.loads(out)
    assert code == 1
    result = by_id(report, check)
    assert result["status"] == "fail"
    if classification is not None:
        failure = result["failure"]
        for key, value in zip(("kind", "category", "code"), classification, strict=True):
            if value is not None:
                assert failure[key] == value, (key, failure)


def test_usage_consistency_names_the_problem(capsys):
    _, out, _ = validate(
        capsys,
        "--simulate",
        "--scenario",
        "usage_mismatch",
        "--check",
        "usage_consistency",
        "--format",
        "json",
    )
    assert "!=" in by_id(json.loads(out), "usage_consistency")["observed"]


def test_latency_warns_instead_of_failing_when_samples_fail(capsys):
    code, out, _ = validate(
        capsys,
        "--simulate",
        "--scenario",
        "rate_limit",
        "--check",
        "latency_by_prompt_size",
        *QUICK,
        "--format",
        "json",
    )
    result = by_id(json.loads(out), "latency_by_prompt_size")
    assert code == 0  # not a required check
    assert result["status"] == "warn"
    assert "failed" in result["observed"]


def test_rate_limit_burst_is_opt_in_and_records_429s(capsys):
    _, out, _ = validate(capsys, "--simulate", *QUICK, "--format", "json")
    assert "rate_limit_burst" not in statuses(json.loads(out))
    code, out, _ = validate(
        capsys,
        "--simulate",
        "--scenario",
        "rate_limit",
        "--check",
        "rate_limit_burst",
        "--format",
        "json",
    )
    result = by_id(json.loads(out), "rate_limit_burst")
    assert code == 0  # opt-in and not required: a warning
    assert result["status"] == "warn"
    assert result["evidence"]["statuses"] == {"429": 10}


def _target(simulator, contract=None, path=None):
    contract = contract or load_preset("cometapi")
    from dataclasses import replace

    from chatcontract.contract import Endpoint

    contract = replace(contract, endpoint=Endpoint(base_url=simulator.base_url))
    return Target(
        contract=contract,
        contract_path=path,
        secret=simulator.api_key,
        secret_source="test",
        model="gpt-4.1-nano",
        simulated=True,
    )


def _accept_everything(request):
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return httpx2.Response(200, json=body)


@pytest.mark.parametrize(
    "check",
    ["missing_auth", "invalid_auth", "malformed_request", "malformed_json", "unsupported_model"],
)
def test_negative_checks_fail_when_the_provider_accepts_bad_requests(simulator, check):
    from chatcontract.checks.context import CheckContext

    target = _target(simulator)
    ctx = CheckContext.open(target, SuiteOptions(), inner=httpx2.MockTransport(_accept_everything))
    try:
        outcome = next(spec for spec in CHECKS if spec.id == check).fn(ctx)
    finally:
        ctx.close()
    assert outcome.status == "fail"
    assert "accepted" in outcome.observed


def test_missing_auth_fails_when_the_provider_answers_5xx_and_names_it(simulator):
    from chatcontract.checks.context import CheckContext

    ctx = CheckContext.open(
        _target(simulator),
        SuiteOptions(),
        # A 502 for the request without the key; the contract's valid request (the control
        # a wrong answer is compared with) is answered.
        inner=httpx2.MockTransport(
            lambda r: (
                httpx2.Response(502, text="bad gateway")
                if "authorization" not in r.headers
                else httpx2.Response(200, json=_COMPLETION)
            )
        ),
    )
    try:
        outcome = next(spec for spec in CHECKS if spec.id == "missing_auth").fn(ctx)
    finally:
        ctx.close()
    assert outcome.status == "fail"
    assert outcome.observed.startswith("a request without the key got HTTP 502, not an auth error")
    assert outcome.failure.category == "auth"  # the clause's owner and first action
    assert outcome.evidence["classification"].startswith("http/upstream/")


def test_redaction_fails_when_a_provider_echoes_the_prompt_into_an_error(simulator):
    from chatcontract.checks.context import CheckContext

    def echo(request):
        prompt = orjson.loads(request.content)["messages"][0]["content"]
        return httpx2.Response(
            400,
            json={
                "error": {
                    "message": f"bad prompt: {prompt}",
                    "type": "invalid_request_error",
                    "code": "",
                }
            },
        )

    ctx = CheckContext.open(_target(simulator), SuiteOptions(), inner=httpx2.MockTransport(echo))
    try:
        ctx.send()
        outcome = next(spec for spec in CHECKS if spec.id == "redaction").fn(ctx)
    finally:
        ctx.close()
    assert outcome.status == "fail"
    assert "prompt text" in outcome.observed


def test_production_contract_skips_negative_checks_unless_allowed(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["init"])
    capsys.readouterr()
    doc = yaml.safe_load((tmp_path / "chatcontract.yaml").read_text())
    doc["environment"] = "production"
    (tmp_path / "chatcontract.yaml").write_text(yaml.safe_dump(doc))
    code, out, _ = validate(
        capsys,
        "--simulate",
        *QUICK,
        "--format",
        "json",
        "--check",
        "missing_auth",
        "--check",
        "canary",
    )
    report = json.loads(out)
    assert code == 0
    assert by_id(report, "missing_auth")["status"] == "skip"
    assert "--allow-negative" in by_id(report, "missing_auth")["observed"]
    _, out, _ = validate(
        capsys, "--simulate", "--allow-negative", "--format", "json", "--check", "missing_auth"
    )
    assert by_id(json.loads(out), "missing_auth")["status"] == "pass"


def test_a_stream_silent_longer_than_the_contract_allows_fails_streaming(
    capsys, tmp_path, monkeypatch
):
    # The simulator's stall lasts 60 s; before, the check waited the call's total_ms for the
    # stream to resume and passed it. ChatClient gives up after its stream read limit.
    monkeypatch.chdir(tmp_path)
    main(["init"])
    capsys.readouterr()
    doc = yaml.safe_load((tmp_path / "chatcontract.yaml").read_text())
    doc["policy"]["timeouts"].update(first_byte_ms=400, first_token_ms=400, idle_ms=400)
    (tmp_path / "chatcontract.yaml").write_text(yaml.safe_dump(doc))
    code, out, _ = validate(
        capsys, "--simulate", "--scenario", "stall_mid_stream", "--check", "streaming",
        "--format", "json",
    )  # fmt: skip
    result = by_id(json.loads(out), "streaming")
    assert code == 1
    assert result["status"] == "fail"
    assert (result["failure"]["category"], result["failure"]["code"]) == (
        "timeout",
        "stream_stalled",
    )


def test_contract_lint_passes_for_an_owned_fresh_contract(capsys, tmp_path):
    path = tmp_path / "c.yaml"
    main(["init", "--path", str(path)])
    capsys.readouterr()
    doc = yaml.safe_load(path.read_text())
    doc["owner"] = "payments-platform"
    path.write_text(yaml.safe_dump(doc))
    _, out, _ = validate(
        capsys,
        "--simulate",
        "--contract",
        str(path),
        "--check",
        "contract_lint",
        "--format",
        "json",
    )
    report = json.loads(out)
    assert report["contract"]["path"] == str(path)
    assert report["contract"]["owner"] == "payments-platform"
    assert by_id(report, "contract_lint")["status"] == "pass"


def test_junit_has_one_testcase_per_check(capsys, tmp_path):
    output = tmp_path / "report.xml"
    code, _, err = validate(
        capsys,
        "--simulate",
        "--scenario",
        "cut_stream",
        *QUICK,
        "--format",
        "junit",
        "--output",
        str(output),
    )
    assert code == 1
    assert "report written" in err
    root = ET.fromstring(output.read_text())
    cases = root.findall(".//testcase")
    assert len(cases) == len([s for s in CHECKS if not s.opt_in])
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
    # The body cut mid-answer, streamed or not: the canary names it, the stream is skipped.
    assert any(name.startswith("canary:") for name in failed)
    assert any(name.startswith("streaming:") for name in skipped)


def test_markdown_is_a_contract_record(capsys):
    code, out, _ = validate(capsys, "--simulate", "--check", "canary", "--format", "markdown")
    assert code == 0
    assert "https://api.cometapi.com/v1" not in out  # the simulator was the target...
    assert "127.0.0.1" in out
    assert "COMETAPI_KEY" in out  # ...but the record names the auth pattern
    assert "invalid_request" in out


def test_table_shows_the_verdict(capsys):
    code, out, _ = validate(capsys, "--simulate", "--check", "canary")
    assert code == 0
    assert "verdict: PASS" in out


def test_contract_without_key_is_a_clear_configuration_error(capsys, tmp_path):
    path = tmp_path / "c.yaml"
    main(["init", "--path", str(path)])
    capsys.readouterr()
    code, _, err = validate(capsys, "--contract", str(path))
    assert code == 2
    assert err.count("\n") == 1
    assert "$COMETAPI_KEY" in err and "--simulate" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--check", "nope"), "unknown check 'nope'"),
        (("--simulate", "--scenario", "nope"), "unknown scenario 'nope'"),
        (("--scenario", "cut_stream"), "add --simulate"),
        (("--canary-runs", "0"), "--canary-runs"),
        (("--contract", "/nonexistent/c.yaml"), "no such file"),
    ],
    ids=["check", "scenario", "scenario-without-simulate", "canary-runs", "contract"],
)
def test_bad_arguments_exit_2_with_one_line(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = validate(capsys, *argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


def test_validate_records_the_run_for_baseline_and_checklist(capsys, tmp_path):
    from chatcontract.drift import read_last_validate

    code, _, err = validate(capsys, "--simulate", "--check", "canary", "--check", "streaming")
    assert code == 0
    assert "recorded .chatcontract/last-validate.json" in err
    report, observed = read_last_validate(tmp_path / ".chatcontract" / "last-validate.json")
    assert report["verdict"] == "pass"
    assert "stop" in observed.to_dict()["finish_reasons"]
    text = (tmp_path / ".chatcontract" / "last-validate.json").read_text()
    assert "sk-chatcontract-local" not in text
    assert "pong" not in text  # no completion text is recorded


def test_no_record_leaves_no_state_behind(capsys, tmp_path):
    code, _, _ = validate(capsys, "--simulate", "--check", "canary", "--no-record")
    assert code == 0
    assert not (tmp_path / ".chatcontract").exists()
