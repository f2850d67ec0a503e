"""`chatcontract review` end to end: validate against a local endpoint, then review on a schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from chatcontract.contract.presets import preset_document
from docs_server import serve_docs

SPEC = json.loads(
    (Path(__file__).parents[1] / "ops" / "fixtures" / "cometapi-chat-openapi.json").read_text()
)
RECORD = Path(".chatcontract") / "last-validate.json"
LOG = Path(".chatcontract") / "review.json"


@pytest.fixture
def docs():
    with serve_docs() as server:
        server.put("/openapi.json", json.dumps(SPEC), content_type="application/json")
        yield server


@pytest.fixture
def project(tmp_path, monkeypatch, simulator, docs):
    """A contract on the local simulator (a real target: its key is set), docs on 127.0.0.1."""
    monkeypatch.chdir(tmp_path)
    document = preset_document("cometapi")
    document["endpoint"]["base_url"] = simulator.base_url
    document["reference_url"] = docs.url("/openapi.json")
    (tmp_path / "chatcontract.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    monkeypatch.setenv("COMETAPI_KEY", simulator.api_key)
    return tmp_path


@pytest.fixture
def validated(cli, project):
    code, _, err = cli("validate", "--check", "canary", "--canary-runs", "1", "--format", "json")
    assert code == 0, err
    return err


def serve(docs, spec) -> None:
    docs.put("/openapi.json", json.dumps(spec), content_type="application/json")


def with_new_status(status: str) -> dict:
    spec = json.loads(json.dumps(SPEC))
    spec["paths"]["/v1/chat/completions"]["post"]["responses"][status] = {"description": "new"}
    return spec


def test_validate_fingerprints_the_documentation_it_ran_under(validated, project, docs):
    assert "documentation fingerprinted: http://127.0.0.1:" in validated
    assert "OpenAPI operation POST /v1/chat/completions" in validated
    record = json.loads((project / RECORD).read_text())
    assert record["validated"]["documentation"]["state"] == "fingerprinted"
    assert all("authorization" not in headers for _, headers in docs.requests)


def test_review_right_after_validate_is_unchanged(cli, validated):
    code, out, _ = cli("review")
    assert code == 0
    assert out.splitlines()[0].startswith("review of cometapi-chat-completions (chatcontract.yaml)")
    assert out.splitlines()[-1] == "verdict: UNCHANGED since the last passing validate"


def test_a_documentation_change_is_exit_1_then_accepted_without_a_validate(
    cli, validated, project, docs
):
    serve(docs, with_new_status("418"))
    code, out, _ = cli("review")
    assert code == 1
    assert (
        "  ! [errors.rules] the documentation now lists HTTP 418; no errors.rules row names status 418"
        in out
    )
    assert out.splitlines()[-1].startswith("verdict: CHANGED (1)")
    code, out, _ = cli("review", "--accept", "--by", "J. Doe", "--note", "we never get 418")
    assert code == 0, out
    assert "accepted by J. Doe at " in out
    log = json.loads((project / LOG).read_text())
    assert log["accepted"][0]["by"] == "J. Doe"
    assert log["accepted"][0]["note"] == "we never get 418"
    assert cli("review")[0] == 0


def test_json_names_each_change_and_its_clause(cli, validated, docs):
    spec = with_new_status("418")
    spec["components"]["schemas"]["ChatCompletionRequest"]["required"].append("user")
    serve(docs, spec)
    code, out, _ = cli("review", "--format", "json")
    result = json.loads(out)
    assert code == result["exit_code"] == 1
    assert result["verdict"] == "changed"
    assert {(c["kind"], c["clause"]) for c in result["changes"]} == {
        ("new_error_status", "errors.rules"),
        ("new_required_request_field", "request.required"),
    }
    assert result["documentation"]["kind"] == "openapi"


def test_unreachable_documentation_is_exit_2(cli, validated, docs):
    docs.put("/openapi.json", "gone", status=404)
    code, out, _ = cli("review")
    assert code == 2
    assert "  ? documentation unreachable: http://127.0.0.1:" in out
    assert out.splitlines()[-1] == "verdict: CANNOT TELL (1 reason above)"


def test_no_validate_run_is_exit_2(cli, project):
    code, out, _ = cli("review", "--format", "json")
    assert code == 2
    assert json.loads(out)["unknown"] == [
        "no validate run recorded; run 'chatcontract validate' first"
    ]


def test_checklist_shows_the_review_state(cli, validated, docs):
    assert "[ ] Contract review current" not in cli("checklist")[1]
    assert "[x] Contract review current: " in cli("checklist")[1]
    serve(docs, with_new_status("418"))
    cli("review")
    _, out, _ = cli("checklist")
    line = next(line for line in out.splitlines() if "Contract review current" in line)
    assert line.startswith(
        "[ ] Contract review current: [errors.rules] the documentation now lists HTTP 418"
    )


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (("--by", "me"), {}, "--by and --note go with --accept"),
        (("--accept",), {"USER": "", "USERNAME": ""}, "--accept needs a name: write --by NAME"),
        (("--accept", "--by", "a\nb"), {}, "--by: write one line"),
        (("--format", "xml"), {}, "invalid choice: 'xml'"),
        (("--contract", "nope.yaml"), {}, "nope.yaml: no such file"),
    ],
    ids=["by-without-accept", "accept-without-name", "name-with-newline", "format", "contract"],
)
def test_bad_input_is_one_line_and_exit_2(cli, capsys, project, monkeypatch, argv, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        code, _, err = cli("review", *argv)
    except SystemExit as exc:  # argparse's own errors exit from parse_args
        code, err = exc.code, capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_corrupt_record_is_one_line_and_exit_2(cli, project):
    (project / ".chatcontract").mkdir()
    (project / RECORD).write_text("{torn")
    code, out, err = cli("review")
    assert (code, out) == (2, "")
    assert (
        err
        == f"chatcontract: error: {RECORD}: not valid JSON (line 1); run 'chatcontract validate' again\n"
    )


def test_validate_passes_when_the_documentation_is_down(cli, project, docs):
    docs.put("/openapi.json", "down", status=503)
    code, _, err = cli("validate", "--check", "canary", "--canary-runs", "1", "--format", "json")
    assert code == 0
    assert f"documentation could not be fetched: {docs.url('/openapi.json')}: HTTP 503" in err
    record = json.loads((project / RECORD).read_text())
    assert record["validated"]["documentation"]["state"] == "unreachable"
    serve(docs, SPEC)  # back up: review can see it, but has nothing to compare it with
    code, out, _ = cli("review")
    assert code == 2
    assert "not fingerprinted at the last passing validate (HTTP 503" in out


KEY = "sk-proj-AbCdEf0123456789AbCdEf0123"


@pytest.mark.parametrize("output", ["text", "json"])
def test_checklist_does_not_repeat_a_key_pasted_into_the_base_url(cli, validated, project, output):
    contract = project / "chatcontract.yaml"
    document = yaml.safe_load(contract.read_text())
    document["endpoint"]["base_url"] = f"http://127.0.0.1:9/{KEY}"
    contract.write_text(yaml.safe_dump(document, sort_keys=False))
    _, out, err = cli("checklist", "--format", output)
    assert "[ ] Endpoint confirmed" in out or '"endpoint_confirmed"' in out
    assert "127.0.0.1:9/***" in out
    assert "AbCdEf" not in out + err
