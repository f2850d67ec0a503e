"""parse_error_body: every error shape, JSON or not, as data; never an exception."""

from pathlib import Path

import pytest
from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.wire import (
    BodyKind,
    ErrorBody,
    ErrorShape,
    error_from_document,
    is_error_envelope,
    parse_error_body,
)

FIXTURES = Path(__file__).parent / "fixtures"


def example(name: str) -> bytes:
    return (FIXTURES / f"cometapi_{name}.json").read_bytes()


# --------------------------------------------------------------------------- research §8


@pytest.mark.parametrize(
    ("name", "message", "type_", "code", "param", "request_id"),
    [
        ("e3", "model name is required", "comet_api_error", "", None, "..."),
        ("e4", "field messages is required", "comet_api_error", "invalid_request", "", "..."),
        (
            "e5",
            "no available channel for group default and model sora-2-all (distributor)",
            "comet_api_error",
            "model_not_found",
            None,
            "20260205132859798638387SIHCnxzJ",
        ),
        (
            "e6",
            "model claude-haiku-4-5 has not been priced by the administrator yet…",
            "comet_api_error",
            None,
            None,
            None,
        ),
        ("e7", "...", "comet_api_error", "invalid_request", "", None),
        ("e9", "Invalid token", "new_api_error", "", None, "xxxxx"),
        (
            "e12",
            "not supported model for image generation, only imagen models are supported",
            "comet_api_error",
            "convert_request_failed",
            None,
            None,
        ),
    ],
    ids=[
        "e3-missing-model",
        "e4-missing-messages",
        "e5-no-channel",
        "e6-unpriced",
        "e7-generic",
        "e9-bad-key",
        "e12-image",
    ],
)
def test_research_error_examples(name, message, type_, code, param, request_id):
    error = parse_error_body(example(name), content_type="application/json")
    assert error.body_kind is BodyKind.JSON
    assert error.shape is ErrorShape.NEWAPI
    assert error.message == message
    assert error.type == type_
    assert error.code == code
    assert error.param == param
    assert error.request_id == request_id
    assert error.is_envelope


def test_key_order_does_not_matter():
    a = parse_error_body(b'{"error":{"code":"x","message":"m","type":"t","param":"p"}}')
    b = parse_error_body(b'{"error":{"message":"m","type":"t","param":"p","code":"x"}}')
    assert a == b


# --------------------------------------------------------------------------- shapes


def test_openai_envelope():
    body = (
        b'{"error": {"message": "You exceeded your current quota.", '
        b'"type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}'
    )
    error = parse_error_body(body)
    assert error.shape is ErrorShape.OPENAI
    assert (error.type, error.code, error.param) == (
        "insufficient_quota",
        "insufficient_quota",
        None,
    )


def test_upstream_error_type_marks_a_newapi_gateway():
    body = (
        b'{"error":{"message":"bad response status code 502","type":"upstream_error",'
        b'"param":"502","code":"bad_response_status_code"}}'
    )
    error = parse_error_body(body)
    assert error.shape is ErrorShape.NEWAPI
    assert error.param == "502"


def test_anthropic_envelope():
    error = parse_error_body(
        b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    )
    assert error.shape is ErrorShape.ANTHROPIC
    assert (error.type, error.message) == ("overloaded_error", "Overloaded")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"message": "Internal server error", "type": "server_error"}', "Internal server error"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b'{"error": "rate limited"}', "rate limited"),
    ],
    ids=["message", "detail", "error-string"],
)
def test_bare_shapes(body, message):
    error = parse_error_body(body)
    assert error.body_kind is BodyKind.JSON
    assert error.shape is ErrorShape.BARE
    assert error.message == message


def test_a_list_holding_one_envelope_is_read():
    error = parse_error_body(
        b'[{"error": {"code": 429, "message": "Resource exhausted", '
        b'"status": "RESOURCE_EXHAUSTED"}}]'
    )
    assert (error.shape, error.code, error.message) == (
        ErrorShape.OPENAI,
        "429",
        "Resource exhausted",
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('""', ""),
        ("null", None),
        ("400", "400"),
        ("1.5", "1.5"),
        ("true", "true"),
        ('{"a": 1}', None),
    ],
    ids=["empty-string", "null", "int", "float", "bool", "object"],
)
def test_code_is_normalised_but_keeps_empty_apart_from_missing(raw, expected):
    error = parse_error_body(f'{{"error": {{"message": "m", "code": {raw}}}}}'.encode())
    assert error.code == expected


def test_missing_code_and_param_are_none():
    error = parse_error_body(b'{"error": {"message": "m"}}')
    assert (error.code, error.param, error.type) == (None, None, None)


def test_non_string_message_is_none():
    assert parse_error_body(b'{"error": {"message": {"text": "x"}, "code": "c"}}').message is None


@pytest.mark.parametrize(
    "body",
    [b'{"success": false}', b"[1, 2]", b'"error"', b"42", b'{"error": null}', b'{"error": {}}'],
    ids=["object", "array", "string", "number", "error-null", "error-empty"],
)
def test_valid_json_without_a_recognisable_error_is_json_other(body):
    error = parse_error_body(body, content_type="application/json")
    assert error.body_kind is BodyKind.JSON_OTHER
    assert error.shape is None
    assert not error.is_envelope


# --------------------------------------------------------------------------- request ids


def test_request_id_is_removed_from_the_message_and_kept_apart():
    body = (
        b'{"error":{"message":"busy (request id: 2026020513313084131287jXTpB855)  ",'
        b'"type":"comet_api_error"}}'
    )
    error = parse_error_body(body)
    assert error.message == "busy"
    assert error.request_id == "2026020513313084131287jXTpB855"


def test_a_custom_request_id_pattern():
    body = b'{"error":{"message":"busy [req abc-123]","type":"server_error"}}'
    error = parse_error_body(body, request_id_pattern=r"\[req ([\w-]+)\]")
    assert (error.message, error.request_id) == ("busy", "abc-123")


def test_credentials_in_a_message_are_redacted():
    body = (
        b'{"error":{"message":"Incorrect API key provided: sk-abcdef1234567890. (request id: 1)",'
        b'"code":"invalid_api_key"}}'
    )
    error = parse_error_body(body)
    assert error.message is not None
    assert "sk-abcdef1234567890" not in error.message
    assert error.message.startswith("Incorrect API key provided: ")


def test_a_long_message_is_clipped():
    body = b'{"error":{"message":"' + b"x" * 5000 + b'"}}'
    error = parse_error_body(body)
    assert error.message is not None
    assert len(error.message) == 1000
    assert error.message.endswith("…")


# --------------------------------------------------------------------------- not JSON


@pytest.mark.parametrize("body", [b"", b"   \n\t"], ids=["empty", "whitespace"])
def test_an_empty_body_as_new_apis_rate_limiter_sends(body):
    assert parse_error_body(body) == ErrorBody(body_kind=BodyKind.EMPTY)


CLOUDFLARE_524 = b"""
<!DOCTYPE html>
<html lang="en-US"><head><title>api.cometapi.com | 524: A timeout occurred</title>
<style>body { color: red }</style><script>var secret = 1;</script></head>
<body><h1>A timeout occurred</h1><p>Error code 524</p></body></html>
"""


def test_html_is_detected_by_its_leading_markup():
    error = parse_error_body(CLOUDFLARE_524)
    assert error.body_kind is BodyKind.HTML
    assert error.html_title == "api.cometapi.com | 524: A timeout occurred"
    assert error.text_excerpt is not None
    assert "Error code 524" in error.text_excerpt
    assert "color: red" not in error.text_excerpt
    assert "var secret" not in error.text_excerpt


def test_html_is_detected_by_content_type():
    error = parse_error_body(b"<p>Moved</p>", content_type="text/html; charset=utf-8")
    assert error.body_kind is BodyKind.HTML
    assert error.html_title is None
    assert error.text_excerpt == "Moved"


@pytest.mark.parametrize(
    "lead", [b"<html>", b"  \n<HTML>", b"<!doctype html>"], ids=["html", "upper", "doctype"]
)
def test_html_detection_is_case_insensitive_after_whitespace(lead):
    assert parse_error_body(lead + b"<title>x</title>").body_kind is BodyKind.HTML


def test_html_entities_and_attributes_in_the_title():
    body = b'<html><head><TITLE lang="en">Bad &amp; gateway</TITLE></head><body>x</body></html>'
    assert parse_error_body(body).html_title == "Bad & gateway"


def test_an_unclosed_script_hides_the_rest_of_the_page():
    error = parse_error_body(b"<html><p>visible</p><script>var key = 1;")
    assert error.text_excerpt == "visible"


@pytest.mark.parametrize(
    "body",
    [b"<html>" + b"<" * 60_000, b"<html>" + b"<title>" * 9_000, b"<html>" + b"<script>" * 8_000],
    ids=["many-lt", "unclosed-titles", "unclosed-scripts"],
)
def test_hostile_html_is_read_in_one_pass(body):
    # each of these took seconds with backtracking regexes; the scan is now linear
    error = parse_error_body(body)
    assert error.body_kind is BodyKind.HTML
    assert error.html_title is None


def test_plain_text_gives_a_short_collapsed_excerpt():
    error = parse_error_body(b"Bad   Gateway\n\n" + b"detail " * 100, content_type="text/plain")
    assert error.body_kind is BodyKind.TEXT
    assert error.text_excerpt is not None
    assert error.text_excerpt.startswith("Bad Gateway detail")
    assert len(error.text_excerpt) == 200


def test_truncated_json_is_invalid_json_with_what_could_be_read():
    body = (
        b'{"error":{"message":"field messages is required (request id: 20260624X)",'
        b'"type":"comet_api_error","code":"invalid_req'
    )
    error = parse_error_body(body)
    assert error.body_kind is BodyKind.INVALID_JSON
    assert error.message == "field messages is required"
    assert error.request_id == "20260624X"
    assert error.type == "comet_api_error"
    assert error.code is None


def test_a_json_scalar_without_a_json_content_type_is_text():
    assert parse_error_body(b"42").body_kind is BodyKind.TEXT


def test_text_that_claims_to_be_json_is_invalid_json():
    error = parse_error_body(b"Internal Server Error", content_type="application/json")
    assert error.body_kind is BodyKind.INVALID_JSON
    assert error.text_excerpt == "Internal Server Error"


# --------------------------------------------------------------------------- envelope test


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"error": {"message": "x"}}, True),
        ({"error": "x"}, True),
        ({"type": "error", "error": {"type": "overloaded_error"}}, True),
        ({"error": None, "choices": []}, False),
        ({"error": {}}, False),
        ({"error": ""}, False),
        ({"message": "x"}, False),
        ([{"error": {"message": "x"}}], False),
        ("error", False),
    ],
    ids=[
        "object",
        "string",
        "anthropic",
        "null",
        "empty-object",
        "empty-string",
        "bare",
        "list",
        "str",
    ],
)
def test_is_error_envelope(doc, expected):
    assert is_error_envelope(doc) is expected


def test_error_from_document_reads_a_decoded_value():
    error = error_from_document({"error": {"message": "boom", "type": "server_error"}})
    assert (error.shape, error.message) == (ErrorShape.OPENAI, "boom")


# --------------------------------------------------------------------------- properties


@settings(max_examples=examples(300))
@given(
    st.binary(max_size=512), st.sampled_from([None, "application/json", "text/html", "text/plain"])
)
def test_any_bytes_give_an_error_body(body, content_type):
    error = parse_error_body(body, content_type=content_type)
    assert isinstance(error.body_kind, BodyKind)
    assert error.text_excerpt is None or len(error.text_excerpt) <= 200


@settings(max_examples=examples(200))
@given(st.text(max_size=200))
def test_any_text_after_an_error_prefix_gives_an_error_body(tail):
    body = ('{"error":{"message":"' + tail).encode("utf-8", "surrogatepass")
    assert parse_error_body(body).body_kind in (BodyKind.JSON, BodyKind.INVALID_JSON)


# --------------------------------------------------------------------------- single decisions
# Each test below pins one decision a mutation run found unpinned (docs/mutation.md).


def test_escapes_in_a_salvaged_message_are_decoded():
    error = parse_error_body(b'{"error": {"message": "say \\"hi\\" \\u00e9", "type": "x"')
    assert error.body_kind is BodyKind.INVALID_JSON
    assert error.message == 'say "hi" é'


def test_an_escape_that_does_not_decode_is_kept_as_written():
    error = parse_error_body(b'{"error": {"message": "bad \\x escape", "type": "x"')
    assert error.message == "bad \\x escape"


def test_a_closing_tag_of_another_block_does_not_end_a_script():
    body = b"<html><title>T</title><script>secret</title>more</script><p>shown</p>"
    error = parse_error_body(body)
    assert error.html_title == "T"
    assert error.text_excerpt is not None
    assert "shown" in error.text_excerpt
    assert "secret" not in error.text_excerpt


def test_html_past_the_first_64_kib_is_not_scanned():
    tail = b"<title>T</title>"
    body = b"<html>" + b" " * (65_537 - 6 - len(tail)) + tail
    assert len(body) == 65_537
    assert parse_error_body(body).html_title is None  # "</title>" ends one byte too late


def test_error_from_document_takes_the_pattern_by_keyword_only():
    with pytest.raises(TypeError):
        error_from_document({"error": {"message": "m"}}, r"id: (\w+)")  # type: ignore[misc]


def test_an_error_body_is_a_frozen_value():
    error = parse_error_body(b'{"error": {"message": "m"}}')
    with pytest.raises(AttributeError):
        error.message = "other"  # type: ignore[misc]


def test_of_a_list_of_envelopes_the_first_is_read():
    doc = [{"error": {"message": "first"}}, {"error": {"message": "second"}}]
    assert error_from_document(doc).message == "first"


def test_an_error_body_takes_keywords_only():
    with pytest.raises(TypeError):
        ErrorBody(BodyKind.EMPTY)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("length", "expected"),
    [(120, "x" * 120), (121, "x" * 119 + "…")],
    ids=["at-the-limit-kept", "over-the-limit-clipped"],
)
def test_an_html_title_is_clipped_past_120_characters(length, expected):
    body = b"<html><title>" + b"x" * length + b"</title></html>"
    assert parse_error_body(body).html_title == expected


def test_html_up_to_the_first_64_kib_is_scanned():
    tail = b"<title>T</title>"
    body = b"<html>" + b" " * (65_536 - 6 - len(tail)) + tail
    assert parse_error_body(body).html_title == "T"


@pytest.mark.parametrize(
    "body",
    [
        b"<html><style>a</script>hidden</style>shown",
        b"<html><script>a<style>hidden</script>shown",
        b"<html><script>x<script>hidden</script>shown",
        b"<html><script>a<title>hidden</title>b</script>shown",
    ],
    ids=["other-closing-tag", "other-opening-tag", "same-opening-tag", "title-inside-script"],
)
def test_the_content_of_a_script_or_style_block_stays_hidden(body):
    error = parse_error_body(body)
    assert error.text_excerpt is not None
    assert "shown" in error.text_excerpt
    assert "hidden" not in error.text_excerpt
    assert error.html_title is None


def test_parse_error_body_takes_the_content_type_by_keyword_only():
    with pytest.raises(TypeError):
        parse_error_body(b"<html>", "text/html")  # type: ignore[misc]


def test_an_error_that_is_neither_text_nor_an_object_falls_back_to_a_bare_message():
    assert error_from_document({"error": 5, "message": "boom"}).message == "boom"


@pytest.mark.parametrize(
    "body",
    [b"", b"<html><title>T</title></html>", b'{"error": {"message": "cut'],
    ids=["empty", "html", "invalid-json"],
)
def test_a_body_without_a_json_envelope_is_not_an_envelope(body):
    assert not parse_error_body(body).is_envelope


def test_only_the_first_item_of_a_list_is_checked_for_an_envelope():
    doc = [{"error": {"message": "first"}}, 1]
    assert error_from_document(doc).message == "first"
    assert error_from_document([1, {"error": {"message": "m"}}]).body_kind is BodyKind.JSON_OTHER
