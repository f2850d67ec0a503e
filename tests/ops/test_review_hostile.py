"""The documentation is network input: a hostile server or document never hangs, raises or lies."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from chatcontract.contract import load_preset
from chatcontract.ops import _docs_fingerprint, _docs_openapi
from chatcontract.ops._docs_fetch import (
    DocumentUnreachable,
    FetchedDocument,
    FetchLimits,
    fetch_document,
)
from chatcontract.ops._docs_fingerprint import (
    _openapi_spec,
    _TextParser,
    compare_views,
    document_facts,
    normalise_page,
    page_diff,
)
from chatcontract.ops.review import describe_documentation
from raw_servers import dripping_head, raw_server

FIXTURES = Path(__file__).parent / "fixtures"
SPEC = json.loads((FIXTURES / "cometapi-chat-openapi.json").read_text())
CONTRACT = load_preset("cometapi")
URL = "https://apidoc.example/openapi.json"


def document(
    body: bytes, content_type: str, url: str = URL, final_url: str = ""
) -> FetchedDocument:
    return FetchedDocument(
        url=url, final_url=final_url or url, content_type=content_type, body=body
    )


# -- the fetch --------------------------------------------------------------------------------


def test_a_head_dripped_one_byte_at_a_time_is_cut_at_the_overall_deadline():
    # Every byte arrives well within the read timeout; only the overall deadline can end it.
    with raw_server(dripping_head(interval_s=0.02, header_bytes=300)) as server:
        found = fetch_document(server.url, limits=FetchLimits(timeout_s=5.0, deadline_s=0.3))
    assert isinstance(found, DocumentUnreachable)
    assert found.reason == "took longer than 0.3 s; not read"


# -- parsing the document ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"openapi": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json"),
        (b"openapi: 3\nx: " + b"[" * 20_000 + b"]" * 20_000, "application/yaml"),
        (b"openapi: " + b"9" * 10_000 + b"\n", "application/yaml"),
        (b"openapi: 3\nx: 2024-13-45\n", "application/yaml"),
        (b"openapi: 3\nx: 1" + b":59" * 300 + b".5\n", "application/yaml"),
        (b"\xff\xfe{\xc3(", "application/json"),
    ],
    ids=["deep-json", "deep-yaml", "10000-digit-yaml", "bad-date-yaml", "huge-sexagesimal", "utf8"],
)
def test_a_hostile_document_is_fingerprinted_not_raised(body, content_type):
    facts = document_facts(document(body, content_type), CONTRACT)
    assert facts.kind in ("openapi", "page")
    assert len(facts.fingerprint) == 16


def test_a_long_yaml_number_stays_text():
    # A sexagesimal integer (1:59:59:...) costs time quadratic in its length to convert.
    text = b"openapi: 3\nx: 1" + b":59" * 200 + b"\ny: 1:30\n"
    spec = _openapi_spec(document(text, "text/yaml"), text.decode())
    assert spec is not None
    assert spec["x"] == "1" + ":59" * 200
    assert spec["y"] == 90


def test_a_schema_shared_level_after_level_is_walked_within_the_step_budget(monkeypatch):
    # Each level's allOf names the next twice: 2**14 paths in a few hundred bytes.
    monkeypatch.setattr(_docs_openapi, "_MAX_STEPS", 500)
    calls = []
    walk = _docs_openapi._Walker.type_of

    def counted(self, *args, **kwargs):
        calls.append(1)
        return walk(self, *args, **kwargs)

    monkeypatch.setattr(_docs_openapi._Walker, "type_of", counted)
    schemas = {
        f"S{level}": {"allOf": [{"$ref": f"#/components/schemas/S{level + 1}"}] * 2}
        for level in range(14)
    }
    schemas["S14"] = {"type": "string"}
    spec = {
        "openapi": "3.0.0",
        "components": {"schemas": schemas},
        "paths": {
            "/v1/chat/completions": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"x": {"$ref": "#/components/schemas/S0"}},
                                }
                            }
                        }
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    facts = document_facts(document(json.dumps(spec).encode(), "application/json"), CONTRACT)
    assert facts.kind == "openapi"
    assert len(calls) <= 510


def test_control_characters_from_a_page_never_reach_the_output():
    page = "<p>hi \x1b[2J\x1b]0;title\x07 there\x9b</p>".encode()
    facts = document_facts(document(page, "text/html"), CONTRACT)
    assert facts.view["text"] == "hi [2J ]0;title there"


# -- redirects --------------------------------------------------------------------------------


def test_a_redirect_to_another_host_is_said_and_is_a_source_change():
    body = json.dumps(SPEC).encode()
    direct = document_facts(document(body, "application/json"), CONTRACT)
    away = document_facts(
        document(body, "application/json", final_url="https://elsewhere.example/openapi.json"),
        CONTRACT,
    )
    assert direct.redirected_to == ""
    assert away.redirected_to == "https://elsewhere.example/openapi.json"
    (change,) = compare_views(direct, away, CONTRACT)
    assert change.kind == "documentation_source_changed"
    assert "now redirects to https://elsewhere.example/openapi.json" in change.detail
    line = describe_documentation({"documentation": {"state": "fingerprinted", **away.to_dict()}})
    assert line.endswith("redirected to another host: https://elsewhere.example/openapi.json")


def test_a_signed_redirect_is_shown_without_its_query_and_is_the_same_source_each_time():
    body = json.dumps(SPEC).encode()
    signed = [
        document_facts(
            document(
                body,
                "application/json",
                final_url=f"https://bucket.example/openapi.json?X-Signature={token}&Expires=1",
            ),
            CONTRACT,
        )
        for token in ("a1b2", "c3d4")
    ]
    assert [facts.redirected_to for facts in signed] == ["https://bucket.example/openapi.json"] * 2
    assert compare_views(signed[0], signed[1], CONTRACT) == []


def test_a_redirect_on_the_same_host_is_not_a_change():
    body = json.dumps(SPEC).encode()
    direct = document_facts(document(body, "application/json"), CONTRACT)
    moved = document_facts(
        document(body, "application/json", final_url="https://apidoc.example/v2/openapi.json"),
        CONTRACT,
    )
    assert moved.redirected_to == ""
    assert compare_views(direct, moved, CONTRACT) == []


@pytest.mark.parametrize(
    ("unclosed", "method"),
    [
        ('<a b="', "parse_starttag"),
        ("<!--x", "parse_comment"),
        ("<![CDATA[", "parse_marked_section"),
    ],
    ids=["attribute", "comment", "cdata"],
)
def test_an_opening_nothing_closes_is_read_as_text_without_rescanning(
    monkeypatch, unclosed, method
):
    # HTMLParser scans from each such "<" to the end before reading it as text: quadratic.
    calls = []
    parse = getattr(_TextParser, method)

    def counted(self, *args):
        calls.append(1)
        return parse(self, *args)

    monkeypatch.setattr(_TextParser, method, counted)
    text = normalise_page("text " + unclosed * 200)
    assert calls == []
    assert text == "text " + unclosed * 200


def test_a_marked_section_htmlparser_does_not_know_is_text_not_a_traceback():
    assert normalise_page("<p>a<![foo]]>b<![<x>c</p>") == "a<![foo]]>b<![c"


def test_a_page_diff_compares_only_what_lies_between_the_common_head_and_tail(monkeypatch):
    # difflib is far beyond linear on repeated lines (20,000 of them: 76 s): it never sees
    # more than _DIFF_MAX_LINES lines a side, and never the common head and tail.
    monkeypatch.setattr(_docs_fingerprint, "_DIFF_MAX_LINES", 50)
    compared = []
    matcher = difflib.SequenceMatcher.__init__

    def counted(self, isjunk=None, a="", b="", autojunk=True):
        compared.append((len(a), len(b)))
        matcher(self, isjunk, a, b, autojunk)

    monkeypatch.setattr(difflib.SequenceMatcher, "__init__", counted)
    common = "\n".join(f"line {index % 7}" for index in range(500))
    assert page_diff(f"{common}\nold\n{common}", f"{common}\nnew\n{common}") == (
        "@@ -501 +501 @@",
        "-old",
        "+new",
    )
    assert compared == [(1, 1)]
    old = "\n".join(f"line {index % 7}" for index in range(300))
    new = "\n".join(f"line {index % 5}" for index in range(300))
    assert page_diff(old, new) == ("... 295 lines now 295 lines from line 6: over 50, not diffed",)
    assert compared == [(1, 1)]
