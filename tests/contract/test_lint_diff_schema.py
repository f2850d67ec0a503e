import datetime as dt
import json

from chatcontract.contract import (
    contract_to_document,
    diff_documents,
    json_schema,
    lint_document,
    load_preset,
)
from chatcontract.contract.presets import preset_document


def _doc(**changes):
    doc = preset_document("cometapi")
    doc.update(changes)
    return doc


def test_lint_warns_on_missing_owner_and_stale_review():
    findings = lint_document(_doc(owner="", reviewed_on="2026-01-01"), today=dt.date(2026, 11, 24))
    messages = [f.message for f in findings if f.level == "warning"]
    assert any(m.startswith("owner: empty") for m in messages)
    assert any("327 days old" in m for m in messages)


def test_lint_is_clean_for_a_fresh_owned_contract():
    findings = lint_document(
        _doc(owner="payments-team", reviewed_on="2026-11-01"), today=dt.date(2026, 11, 24)
    )
    assert findings == []


def test_lint_warns_on_missing_reference_url_and_review_date():
    messages = [
        f.message for f in lint_document(_doc(owner="t", reference_url="", reviewed_on=None))
    ]
    assert any(m.startswith("reference_url: missing") for m in messages)
    assert any(m.startswith("reviewed_on: missing") for m in messages)


def test_lint_warns_on_a_secret_looking_value_without_echoing_it():
    doc = _doc(owner="t")
    doc["attestations"] = {"key": "sk-abcdefghijklmnopqrstuvwxyz123456"}
    warnings = [f.message for f in lint_document(doc) if f.level == "warning"]
    assert any(m.startswith("attestations.key: looks like a secret") for m in warnings)
    assert not any("sk-abcdefghijklmnop" in m for m in warnings)


def test_lint_reports_errors_as_errors():
    doc = _doc(owner="t")
    doc["endpoint"]["base_url"] = 42
    levels = {(f.level, f.message) for f in lint_document(doc)}
    assert ("error", "endpoint.base_url: expected text, got 42") in levels


def test_diff_flags_breaking_changes():
    old = contract_to_document(load_preset("cometapi"))
    new = json.loads(json.dumps(old))
    new["endpoint"]["base_url"] = "https://api.example.com/v1"
    new["response"]["required_paths"].remove("usage.total_tokens")
    new["owner"] = "team-x"
    new["errors"]["retryable"].append("quota")
    new["errors"]["non_retryable"].remove("quota")
    changes = {(c.path, c.change): c for c in diff_documents(old, new)}
    assert changes[("endpoint.base_url", "changed")].breaking
    assert changes[("response.required_paths", "removed")].old == "usage.total_tokens"
    assert changes[("response.required_paths", "removed")].breaking
    assert changes[("errors.retryable", "added")].breaking
    assert not changes[("owner", "changed")].breaking


def test_diff_compares_rules_by_name():
    old = contract_to_document(load_preset("cometapi"))
    new = json.loads(json.dumps(old))
    new["errors"]["rules"][0]["category"] = "upstream"
    changes = diff_documents(old, new)
    assert [(c.path, c.old, c.new) for c in changes] == [
        ("errors.rules.invalid_request.category", "validation", "upstream")
    ]
    assert changes[0].breaking


def test_diff_of_identical_contracts_is_empty():
    doc = contract_to_document(load_preset("openai"))
    assert diff_documents(doc, doc) == []


def test_schema_is_closed_and_knows_the_categories():
    schema = json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "provider", "endpoint", "auth", "model"}
    rule = schema["properties"]["errors"]["properties"]["rules"]["items"]
    assert "rate_limit" in rule["properties"]["category"]["enum"]
    assert schema["properties"]["policy"]["properties"]["timeouts"]["additionalProperties"] is False
