"""`review` recomputes what the last passing validate proved: 0 unchanged, 1 changed, 2 cannot tell."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from chatcontract.contract import dump, load
from chatcontract.contract.presets import preset_document
from chatcontract.errors import ConfigError
from chatcontract.ops import review as reviewing
from chatcontract.ops._docs_fetch import FetchedDocument
from chatcontract.ops.review import (
    accept_documentation,
    review,
    review_checklist_line,
    validated_facts,
    with_last_review,
)
from docs_server import serve_docs

FIXTURES = Path(__file__).parent / "fixtures"
SPEC = (FIXTURES / "cometapi-chat-openapi.json").read_text()
TODAY = dt.date(2026, 12, 6)


@pytest.fixture
def docs():
    with serve_docs() as server:
        server.put("/openapi.json", SPEC, content_type="application/json")
        yield server


@pytest.fixture
def contract_path(tmp_path, docs):
    document = preset_document("cometapi")
    document["reference_url"] = docs.url("/openapi.json")
    document["reviewed_on"] = "2026-12-01"
    path = tmp_path / "chatcontract.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def edit_contract(path: Path, change) -> None:
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def passing_record(contract_path: Path, *, simulated=False, verdict="pass", **overrides):
    contract = load(contract_path)
    record = {
        "report": {
            "started_at": "2026-12-06T03:00:00Z",
            "verdict": verdict,
            "target": {
                "base_url": contract.endpoint.base_url,
                "simulated": simulated,
                "model": contract.model,
            },
        },
        "verdict": verdict,
        "validated": validated_facts(contract, str(contract_path), simulated=simulated),
    }
    record.update(overrides)
    return record


def run_review(contract_path: Path, record, log=None, **options):
    return review(
        load(contract_path), contract_path=str(contract_path), record=record, log=log or {},
        today=options.pop("today", TODAY), **options,
    )  # fmt: skip


def test_nothing_changed_is_exit_0_with_what_was_compared(contract_path):
    result = run_review(contract_path, passing_record(contract_path))
    assert (result.verdict, result.exit_code) == ("unchanged", 0)
    notes = "\n".join(result.notes)
    assert "contract file" in notes and "unchanged" in notes
    assert "documentation http://127.0.0.1:" in notes
    assert "OpenAPI operation POST /v1/chat/completions" in notes
    assert "reviewed_on 2026-12-01: due 2027-03-01 (every 90 days)" in notes


def test_validate_records_the_digest_versions_and_fingerprint(contract_path):
    facts = validated_facts(load(contract_path), str(contract_path), simulated=False)
    assert len(facts["contract"]["sha256"]) == 64
    assert facts["contract"]["document"]["name"] == "cometapi-chat-completions"
    assert set(facts["versions"]) == {"chatcontract", "openai", "httpx2"}
    assert facts["versions"]["httpx2"]
    assert facts["documentation"]["state"] == "fingerprinted"
    assert facts["documentation"]["kind"] == "openapi"
    json.dumps(facts)  # the record is plain JSON


def test_a_new_required_field_in_the_documentation_is_exit_1(contract_path, docs):
    record = passing_record(contract_path)
    spec = json.loads(SPEC)
    spec["components"]["schemas"]["ChatCompletionRequest"]["required"].append("user")
    docs.put("/openapi.json", json.dumps(spec), content_type="application/json")
    result = run_review(contract_path, record)
    assert result.exit_code == 1
    (change,) = result.changes
    assert (change.source, change.kind, change.clause) == (
        "documentation", "new_required_request_field", "request.required",
    )  # fmt: skip
    assert "[request.required]" in reviewing.render_review_text(result)


def test_unreachable_documentation_is_exit_2_and_says_so(contract_path, docs):
    record = passing_record(contract_path)
    docs.put("/openapi.json", "gone", status=404)
    result = run_review(contract_path, record)
    assert result.exit_code == 2
    (reason,) = result.unknown
    assert reason.startswith("documentation unreachable: http://127.0.0.1:")
    assert reason.endswith("HTTP 404 from " + docs.url("/openapi.json"))


def test_a_redirect_to_another_host_is_a_change_and_is_said(contract_path, docs):
    record = passing_record(contract_path)
    away = "http://elsewhere.example/openapi.json"

    def fetch(url):
        return FetchedDocument(
            url=url, final_url=away, content_type="application/json", body=SPEC.encode()
        )

    result = run_review(contract_path, record, fetch=fetch)
    assert result.exit_code == 1
    (change,) = [c for c in result.changes if c.source == "documentation"]
    assert change.kind == "documentation_source_changed"
    assert f"redirected to another host: what {away} serves was fingerprinted" in "\n".join(
        result.notes
    )
    _, log = accept_documentation(result, {}, by="ana", at="2026-12-06T04:00:00Z")
    again = run_review(contract_path, record, log=log, fetch=fetch)
    assert (again.verdict, again.exit_code) == ("unchanged", 0)


def test_documentation_unreachable_at_validate_is_recorded_not_raised(contract_path, docs):
    docs.put("/openapi.json", "down", status=503)
    facts = validated_facts(load(contract_path), str(contract_path), simulated=False)
    assert facts["documentation"]["state"] == "unreachable"
    assert "HTTP 503" in facts["documentation"]["reason"]
    docs.put("/openapi.json", SPEC, content_type="application/json")
    record = passing_record(contract_path)
    record["validated"] = facts
    result = run_review(contract_path, record)
    assert result.exit_code == 2
    assert "not fingerprinted at the last passing validate" in result.unknown[0]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, "no validate run recorded"),
        (
            {"report": {"started_at": "t"}, "verdict": "fail"},
            "no passing run recorded: the last validate (t) failed",
        ),
        (
            {"report": {"started_at": "t", "target": {"simulated": True}}, "verdict": "pass"},
            "ran against the simulator, which proves nothing about https://api.cometapi.com/v1",
        ),
        ({"report": {"started_at": "t"}, "verdict": "pass"}, "recorded no review facts"),
    ],
    ids=["no-record", "failed-run", "simulated-run", "older-record"],
)
def test_cannot_tell_is_exit_2_with_the_reason(contract_path, record, expected):
    result = run_review(contract_path, record)
    assert result.exit_code == 2
    assert expected in result.unknown[0]


def test_a_clause_edited_since_validate_is_named(contract_path):
    record = passing_record(contract_path)
    edit_contract(contract_path, lambda doc: doc["policy"]["retry"].update(max_attempts=4))
    result = run_review(contract_path, record)
    assert result.exit_code == 1
    (change,) = result.changes
    assert change.clause == "policy.retry.max_attempts"
    assert change.detail.startswith("policy.retry.max_attempts: 2 -> 4")


def test_bumping_reviewed_on_needs_no_new_validate(contract_path):
    record = passing_record(contract_path)
    edit_contract(contract_path, lambda doc: doc.update(reviewed_on="2026-12-05", owner="payments"))
    result = run_review(contract_path, record)
    assert result.exit_code == 0
    assert any(
        "edited (owner, reviewed_on); no clause validate proves changed" in n for n in result.notes
    )


@pytest.mark.parametrize(
    ("reviewed_on", "every", "expected"),
    [
        ("2026-01-01", 90, "2026-01-01 is 339 days old (review_every_days: 90)"),
        ("2026-11-01", 30, "2026-11-01 is 35 days old (review_every_days: 30)"),
        (None, 90, "not set"),
    ],
    ids=["default-interval", "own-interval", "never"],
)
def test_an_overdue_review_date_is_exit_1(contract_path, reviewed_on, every, expected):
    edit_contract(
        contract_path, lambda doc: doc.update(reviewed_on=reviewed_on, review_every_days=every)
    )
    result = run_review(contract_path, passing_record(contract_path))
    assert result.exit_code == 1
    (change,) = result.changes
    assert change.clause == "reviewed_on"
    assert expected in change.detail


def test_an_sdk_upgrade_since_validate_is_named(contract_path):
    record = passing_record(contract_path)
    record["validated"]["versions"]["openai"] = "2.9.0"
    result = run_review(contract_path, record)
    assert result.exit_code == 1
    (change,) = result.changes
    assert change.clause == "client: the openai SDK"
    assert change.detail.startswith("openai 2.9.0 -> ")


def test_changes_win_over_cannot_tell(contract_path, docs):
    record = passing_record(contract_path)
    record["validated"]["versions"]["httpx2"] = "2.0.0"
    docs.put("/openapi.json", "gone", status=404)
    result = run_review(contract_path, record)
    assert result.exit_code == 1
    assert result.unknown and result.unknown[0].startswith("documentation unreachable")


def test_accept_makes_the_current_documentation_the_baseline(contract_path, docs):
    record = passing_record(contract_path)
    spec = json.loads(SPEC)
    spec["paths"]["/v1/chat/completions"]["post"]["responses"]["418"] = {"description": "teapot"}
    docs.put("/openapi.json", json.dumps(spec), content_type="application/json")
    result = run_review(contract_path, record)
    assert result.exit_code == 1
    accepted, log = accept_documentation(
        result, {}, by="J. Doe", note="not used by us", at="2026-12-06T04:00:00Z"
    )
    assert accepted.exit_code == 0
    (entry,) = log["accepted"]
    assert (entry["by"], entry["at"], entry["note"]) == (
        "J. Doe",
        "2026-12-06T04:00:00Z",
        "not used by us",
    )
    assert entry["changes"][0]["kind"] == "new_error_status"
    assert run_review(contract_path, record, log).exit_code == 0
    # A new validate run is a new baseline: the accepted entry belongs to the old run.
    newer = passing_record(contract_path)
    newer["report"]["started_at"] = "2026-12-07T00:00:00Z"
    assert reviewing._log_for_run(log, run_review(contract_path, newer).run_id) == {}


def test_accept_does_not_cover_contract_or_sdk_changes(contract_path, docs):
    record = passing_record(contract_path)
    record["validated"]["versions"]["openai"] = "2.9.0"
    docs.put(
        "/openapi.json",
        SPEC.replace('"nullable": true', '"nullable": false', 1),
        content_type="application/json",
    )
    result = run_review(contract_path, record)
    accepted, _ = accept_documentation(result, {}, by="J. Doe")
    assert accepted.exit_code == 1
    assert [change.source for change in accepted.changes] == ["versions"]


def test_accept_with_nothing_changed_is_a_clear_error(contract_path):
    result = run_review(contract_path, passing_record(contract_path))
    with pytest.raises(ConfigError, match="nothing to accept: the documentation is unchanged"):
        accept_documentation(result, {}, by="J. Doe")


def test_accept_records_a_first_fingerprint_when_validate_could_not_fetch(contract_path, docs):
    docs.put("/openapi.json", "down", status=503)
    record = passing_record(contract_path)
    docs.put("/openapi.json", SPEC, content_type="application/json")
    accepted, log = accept_documentation(run_review(contract_path, record), {}, by="ops")
    assert accepted.exit_code == 0
    assert log["accepted"][0]["changes"][0]["kind"] == "first_fingerprint"
    assert run_review(contract_path, record, log).exit_code == 0


def test_the_checklist_line_reads_the_last_review_offline(contract_path, docs):
    record = passing_record(contract_path)
    offline = run_review(contract_path, record, offline=True)
    status, evidence = review_checklist_line(offline)
    assert status == "passed"
    assert "documentation fingerprinted at validate" in evidence
    docs.put(
        "/openapi.json",
        SPEC.replace('"total_tokens": {\n', '"total": {\n'),
        content_type="application/json",
    )
    online = run_review(contract_path, record)
    assert online.exit_code == 1
    log = with_last_review({}, online, at="2026-12-06T05:00:00Z")
    docs.close()  # offline: nothing is fetched
    status, evidence = review_checklist_line(run_review(contract_path, record, log, offline=True))
    assert status == "open"
    assert "(review of 2026-12-06T05:00:00Z)" in evidence


def test_a_contract_without_reference_url_cannot_be_told(contract_path):
    edit_contract(contract_path, lambda doc: doc.update(reference_url=""))
    record = passing_record(contract_path)
    assert record["validated"]["documentation"]["state"] == "none"
    result = run_review(contract_path, record)
    assert result.exit_code == 2
    assert "names no reference_url" in result.unknown[0]


def test_a_simulated_validate_fetches_nothing(contract_path, docs):
    facts = validated_facts(load(contract_path), str(contract_path), simulated=True)
    assert facts["documentation"]["state"] == "skipped"
    assert docs.requests == []


def test_the_dumped_contract_round_trips_review_every_days(contract_path):
    edit_contract(contract_path, lambda doc: doc.update(review_every_days=30))
    assert "review_every_days: 30" in dump(load(contract_path))
