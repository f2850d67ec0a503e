"""Documentation fingerprints: cosmetic edits never trigger; real changes are named in contract terms."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from chatcontract.contract import load_preset
from chatcontract.ops._docs_fetch import FetchedDocument
from chatcontract.ops._docs_fingerprint import compare_views, document_facts, normalise_page

FIXTURES = Path(__file__).parent / "fixtures"
SPEC = json.loads((FIXTURES / "cometapi-chat-openapi.json").read_text())
PAGE = (FIXTURES / "cometapi-chat.html").read_text()
URL = "https://apidoc.example/openapi.json"
CONTRACT = load_preset("cometapi")
OPERATION = SPEC["paths"]["/v1/chat/completions"]["post"]
SCHEMAS = SPEC["components"]["schemas"]


def facts(body: str | bytes | dict, content_type: str = "application/json", url: str = URL):
    if isinstance(body, dict):
        body = json.dumps(body)
    data = body.encode() if isinstance(body, str) else body
    document = FetchedDocument(url=url, final_url=url, content_type=content_type, body=data)
    return document_facts(document, CONTRACT)


def edited(change) -> dict:
    spec = copy.deepcopy(SPEC)
    change(spec)
    return spec


def changes(after: dict):
    return compare_views(facts(SPEC), facts(after), CONTRACT)


def _reverse_keys(value):
    if isinstance(value, dict):
        return {key: _reverse_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(item) for item in value]
    return value


def _set(path: str, value):
    def change(spec):
        *parents, leaf = path.split("/")
        node = spec
        for key in parents:
            node = node[key]
        node[leaf] = value

    return change


# -- OpenAPI ----------------------------------------------------------------------------------


def test_only_the_contracts_operation_is_fingerprinted():
    found = facts(SPEC)
    assert found.kind == "openapi"
    assert found.summary == "OpenAPI operation POST /v1/chat/completions"
    assert found.view["request"]["required"] == [
        "messages",
        "messages[].content",
        "messages[].content[].type",
        "messages[].role",
        "model",
    ]
    assert found.view["response"]["fields"]["choices[].message.content"] == "null|string"
    assert found.view["response"]["fields"]["usage.total_tokens"] == "integer"
    assert found.view["errors"]["503"]["codes"] == ["model_not_found"]
    assert found.view["errors"]["500"]["codes"] == ["invalid_request"]


@pytest.mark.parametrize(
    "cosmetic",
    [
        lambda text: json.dumps(_reverse_keys(json.loads(text))),
        lambda text: json.dumps(json.loads(text), indent=None, separators=(",", ":")),
        lambda text: json.dumps(
            edited(
                lambda spec: spec["paths"]["/v1/chat/completions"]["post"].update(
                    description="Reworded."
                )
            )
        ),
        lambda text: json.dumps(
            edited(
                _set("components/schemas/Usage/properties/total_tokens/description", "Sum of both.")
            )
        ),
        lambda text: json.dumps(
            edited(
                lambda spec: spec["paths"]["/v1/chat/completions"]["post"]["responses"]["503"][
                    "content"
                ]["application/json"]["examples"]["model_not_found"]["value"]["error"].update(
                    message="another wording"
                )
            )
        ),
        lambda text: json.dumps(edited(_set("info/version", "1.0.1"))),
        lambda text: json.dumps(edited(lambda spec: spec["paths"].pop("/v1/models"))),
        lambda text: yaml.safe_dump(json.loads(text), sort_keys=True),
    ],
    ids=[
        "key-order",
        "whitespace",
        "operation-description",
        "field-description",
        "error-example-message",
        "info-version",
        "another-operation",
        "same-document-as-yaml",
    ],
)
def test_cosmetic_edits_do_not_change_the_fingerprint(cosmetic):
    text = cosmetic(json.dumps(SPEC, indent=2))
    content_type = "application/yaml" if not text.lstrip().startswith("{") else "application/json"
    after = facts(text, content_type)
    assert after.kind == "openapi"
    assert after.fingerprint == facts(SPEC).fingerprint
    assert compare_views(facts(SPEC), after, CONTRACT) == []


def test_a_new_required_request_field_names_request_required():
    def change(spec):
        request = SCHEMAS_OF(spec)["ChatCompletionRequest"]
        request["required"].append("service_tier")
        request["properties"]["service_tier"] = {"type": "string"}

    (found,) = [c for c in changes(edited(change)) if c.kind == "new_required_request_field"]
    assert found.clause == "request.required"
    assert "'service_tier'" in found.detail and "the fixture does not send it" in found.detail


def SCHEMAS_OF(spec):  # noqa: N802 - reads like the document's own key
    return spec["components"]["schemas"]


def test_a_removed_response_field_the_contract_reads_is_named():
    after = edited(lambda spec: SCHEMAS_OF(spec)["Usage"]["properties"].pop("total_tokens"))
    (found,) = changes(after)
    assert found.kind == "response_field_removed"
    assert found.clause == "response.required_paths"
    assert "'usage.total_tokens'" in found.detail


def test_a_retyped_response_field_the_contract_reads_is_named():
    after = edited(_set("components/schemas/ChatCompletion/properties/created", {"type": "string"}))
    (found,) = changes(after)
    assert found.kind == "response_field_retyped"
    assert found.clause == "response.optional_paths"
    assert "'created' is now string (was integer)" in found.detail


def test_a_new_response_field_nobody_reads_is_reported_without_a_clause():
    after = edited(
        _set("components/schemas/ChatCompletion/properties/obfuscation", {"type": "string"})
    )
    (found,) = changes(after)
    assert found.kind == "response_schema_changed"
    assert found.clause.startswith("none")
    assert "'obfuscation'" in found.detail


def test_a_renamed_error_code_names_the_rule_that_matched_it():
    def change(spec):
        examples = spec["paths"]["/v1/chat/completions"]["post"]["responses"]["503"]["content"][
            "application/json"
        ]["examples"]
        examples["model_not_found"]["value"]["error"]["code"] = "model_unavailable"

    (found,) = changes(edited(change))
    assert found.kind == "error_code_changed"
    assert found.clause == "errors.rules[model_not_found]"
    assert "HTTP 503: error code 'model_not_found' is now 'model_unavailable'" in found.detail


def test_a_new_error_status_says_which_rules_cover_it():
    def change(spec):
        responses = spec["paths"]["/v1/chat/completions"]["post"]["responses"]
        responses["413"] = {"description": "Too large"}
        responses["418"] = {"description": "Teapot"}

    found = {c.detail.split(";")[0]: c for c in changes(edited(change))}
    assert set(found) == {
        "the documentation now lists HTTP 413",
        "the documentation now lists HTTP 418",
    }
    assert found["the documentation now lists HTTP 413"].clause == "errors.rules"
    assert (
        "errors.rules request_too_large match it"
        in found["the documentation now lists HTTP 413"].detail
    )
    assert (
        "no errors.rules row names status 418"
        in found["the documentation now lists HTTP 418"].detail
    )


def test_the_operation_disappearing_names_the_endpoint():
    after = edited(lambda spec: spec["paths"].pop("/v1/chat/completions"))
    (found,) = changes(after)
    assert found.kind == "operation_removed"
    assert found.clause == "endpoint.path"


def test_a_cyclic_schema_is_walked_without_recursing_forever():
    after = edited(
        _set(
            "components/schemas/Message/properties/reply", {"$ref": "#/components/schemas/Message"}
        )
    )
    (found,) = changes(after)
    assert found.kind == "request_schema_changed"
    assert "messages[].reply" in found.detail


# -- pages ------------------------------------------------------------------------------------


def page_facts(html: str):
    return facts(html, "text/html; charset=utf-8", url="https://apidoc.example/chat")


@pytest.mark.parametrize(
    "cosmetic",
    [
        lambda html: html.replace("December 1, 2026 at 09:12 UTC", "December 5, 2026 at 17:40 UTC"),
        lambda html: html.replace("2026-12-01T09:12:44Z", "2026-12-05T17:40:02Z"),
        lambda html: html.replace("&copy; 2026", "&copy; 2027"),
        lambda html: html.replace('"a1b2c3"', '"ffff00"'),
        lambda html: html.replace("font-family: sans-serif", "font-family: serif"),
        lambda html: html.replace("\n    ", "\n\t\t").replace("  ", " "),
        lambda html: html.replace("Send the key as\n       <code>", "Send the key as <code>"),
    ],
    ids=[
        "footer-date",
        "build-timestamp",
        "copyright-year",
        "script",
        "style",
        "whitespace",
        "rewrapped-paragraph",
    ],
)
def test_page_edits_that_are_not_content_do_not_trigger(cosmetic):
    before, after = page_facts(PAGE), page_facts(cosmetic(PAGE))
    assert after.fingerprint == before.fingerprint
    assert compare_views(before, after, CONTRACT) == []


def test_a_changed_paragraph_triggers_with_a_short_diff():
    after = PAGE.replace(
        "A 503 with error.code model_not_found means no channel serves the model.",
        "A 404 with error.code model_not_found means the model does not exist.",
    )
    (found,) = compare_views(page_facts(PAGE), page_facts(after), CONTRACT)
    assert found.kind == "page_changed"
    assert found.detail == "changed; review"
    assert found.clause == "reference_url"
    assert "-A 503 with error.code model_not_found means no channel serves the model." in found.diff
    assert "+A 404 with error.code model_not_found means the model does not exist." in found.diff
    assert len(found.diff) <= 41


def test_the_page_diff_is_bounded():
    many = PAGE.replace(
        "</main>", "".join(f"<p>new paragraph {i}</p>" for i in range(500)) + "</main>"
    )
    (found,) = compare_views(page_facts(PAGE), page_facts(many), CONTRACT)
    assert len(found.diff) == 41
    assert found.diff[-1].startswith("... ") and found.diff[-1].endswith("more diff lines")


def test_normalised_text_has_no_scripts_styles_or_dates():
    text = normalise_page(PAGE)
    assert "window.__BUILD__" not in text and "font-family" not in text
    assert "2026" not in text.split("Errors")[-1]
    assert (
        "Creates a model response for the given chat conversation. Send the key as "
        "Authorization: Bearer <COMETAPI_KEY>." in text
    )
    assert "POST https://api.cometapi.com/v1/chat/completions" in text.splitlines()


def test_a_page_becoming_an_openapi_document_is_a_format_change():
    (found,) = compare_views(
        page_facts(PAGE), facts(SPEC, url="https://apidoc.example/chat"), CONTRACT
    )
    assert found.kind == "documentation_format_changed"
