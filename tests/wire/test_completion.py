"""parse_completion: strict where the application reads, tolerant elsewhere, never raising."""

from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.contract import ResponseSpec, load_preset
from chatcontract.wire import (
    BodyKind,
    CompletionResult,
    ErrorShape,
    ViolationKind,
    parse_completion,
)
from chatcontract.wire.completion import (
    Completion,
    ToolCall,
    Usage,
    _parse_document_slowly,
    parse_usage,
)
from chatcontract.wire.known_types import level

FIXTURES = Path(__file__).parent / "fixtures"
COMETAPI = load_preset("cometapi")
DEFAULT_REQUIRED = ResponseSpec().required_paths


def example(name: str) -> bytes:
    return (FIXTURES / f"cometapi_{name}.json").read_bytes()


def completion_doc(**overrides):
    doc = orjson.loads(example("e1"))
    doc.update(overrides)
    return doc


def with_required(*paths: str):
    return replace(COMETAPI, response=ResponseSpec(required_paths=paths))


def parse_doc(doc, contract=COMETAPI) -> CompletionResult:
    return parse_completion(orjson.dumps(doc), contract=contract)


def messages_of(result: CompletionResult) -> list[str]:
    return [str(violation) for violation in result.violations]


# --------------------------------------------------------------------------- research §8


def test_e1_comet_docs_success_parses_with_every_field():
    result = parse_completion(example("e1"), contract=COMETAPI)
    assert result.ok
    completion = result.completion
    assert completion is not None
    assert completion.id == "chatcmpl-DNA27oKtBUL8TmbGpBM3B3zhWgYfZ"
    assert completion.model == "gpt-4.1-nano-2025-04-14"
    assert completion.created == 1774412483
    assert completion.content == "Four"
    assert completion.finish_reason == "stop"
    assert completion.system_fingerprint == "fp_490a4ad033"
    assert completion.refusal is None
    assert completion.choice_count == 1
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (29, 2)
    assert completion.usage.total_tokens == 31
    assert completion.usage.details["prompt_tokens_details"] == {
        "cached_tokens": 0,
        "audio_tokens": 0,
    }


def test_e2_empty_detail_objects_are_tolerated():
    result = parse_completion(example("e2"), contract=COMETAPI)
    assert result.ok, messages_of(result)
    assert result.completion is not None
    assert result.completion.content == "Hello! How can I assist you today?"
    assert result.completion.usage is not None
    assert result.completion.usage.details == {
        "completion_tokens_details": {},
        "prompt_tokens_details": {},
    }


def test_e2_parses_with_the_default_contract_too():
    assert parse_completion(example("e2")).ok


def test_e8_claude_usage_with_cache_creation_counts_is_accepted():
    doc = completion_doc(usage=orjson.loads(example("e8")))
    result = parse_doc(doc)
    assert result.ok, messages_of(result)
    assert result.completion is not None
    usage = result.completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (8669, 20, 8689)
    assert usage.details["claude_cache_creation_5_m_tokens"] == 0
    assert usage.details["claude_cache_creation_1_h_tokens"] == 0


def test_e10_model_catalogue_is_not_a_completion():
    result = parse_completion(example("e10"), contract=COMETAPI)
    assert not result.ok
    assert messages_of(result) == [
        "$.choices: expected non-empty array, got missing",
        "$.id: expected string, got missing",
        "$.model: expected string, got missing",
        "$.usage: expected object, got missing",
    ]


@pytest.mark.parametrize("name", ["e3", "e4", "e5", "e6", "e7", "e9", "e12"])
def test_error_examples_on_a_200_are_error_envelopes_not_completions(name):
    result = parse_completion(example(name), contract=COMETAPI)
    assert not result.ok
    assert result.completion is None
    assert messages_of(result) == ["$: expected a completion, got an error envelope"]
    assert result.violations[0].kind is ViolationKind.ERROR_ENVELOPE
    assert result.error is not None
    assert result.error.body_kind is BodyKind.JSON
    assert result.error.shape is ErrorShape.NEWAPI


def test_error_envelope_on_a_200_uses_the_contracts_request_id_pattern():
    body = b'{"error":{"message":"busy [rid=abc123]","type":"server_error"}}'
    base = load_preset("openai")
    contract = replace(base, errors=replace(base.errors, request_id_pattern=r"\[rid=(\w+)\]"))
    result = parse_completion(body, contract=contract)
    assert result.error is not None
    assert (result.error.message, result.error.request_id) == ("busy", "abc123")


# --------------------------------------------------------------------------- tolerance


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("service_tier", "default"),
        ("obfuscation", "xzrMXow"),
        ("unknown_top_level", {"nested": [1, 2]}),
        ("system_fingerprint", None),
    ],
    ids=["service_tier", "obfuscation", "unknown", "null-fingerprint"],
)
def test_extra_top_level_members_are_tolerated(path, value):
    assert parse_doc(completion_doc(**{path: value})).ok


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("latency_checkpoint", {"first_token_ms": 120}),
        ("input_tokens", 0),
        ("prompt_tokens_details", None),
        ("completion_tokens_details", {"text_tokens": 2}),
    ],
    ids=["latency_checkpoint", "input_tokens", "null-details", "text-tokens"],
)
def test_extra_usage_members_are_tolerated(name, value):
    doc = completion_doc()
    doc["usage"][name] = value
    result = parse_doc(doc)
    assert result.ok, messages_of(result)
    assert result.completion is not None
    assert result.completion.usage is not None
    assert result.completion.usage.details[name] == value


def test_reasoning_content_and_annotations_are_read_or_ignored():
    doc = completion_doc()
    doc["choices"][0]["message"]["reasoning_content"] = "thinking"
    doc["choices"][0]["message"]["annotations"] = [{"type": "url_citation"}]
    doc["choices"][0]["logprobs"] = None
    result = parse_doc(doc)
    assert result.ok
    assert result.completion is not None
    assert result.completion.reasoning_content == "thinking"


def test_missing_usage_is_fine_when_the_contract_does_not_read_it():
    doc = completion_doc()
    del doc["usage"]
    assert parse_doc(doc, contract=None).ok


def test_missing_usage_breaks_a_contract_that_reads_it():
    doc = completion_doc()
    del doc["usage"]
    assert messages_of(parse_doc(doc)) == ["$.usage: expected object, got missing"]


def test_several_choices_are_all_type_checked_and_the_first_is_read():
    doc = completion_doc()
    doc["choices"].append({"index": 1, "message": {"role": "assistant", "content": 7}})
    result = parse_doc(doc)
    assert messages_of(result) == ["$.choices[1].message.content: expected string, got 7"]
    assert result.completion is not None
    assert result.completion.content == "Four"
    assert result.completion.choice_count == 2


# --------------------------------------------------------------------------- null content


def tool_call_doc(finish_reason="tool_calls"):
    doc = completion_doc()
    doc["choices"][0]["finish_reason"] = finish_reason
    doc["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    return doc


def test_null_content_with_tool_calls_is_a_valid_completion():
    result = parse_doc(tool_call_doc())
    assert result.ok, messages_of(result)
    assert result.completion is not None
    assert result.completion.content is None
    (call,) = result.completion.tool_calls
    assert (call.index, call.id, call.type, call.name) == (0, "call_1", "function", "get_weather")
    assert call.arguments == '{"city": "Paris"}'


def test_null_content_with_tool_calls_is_fine_even_when_finish_reason_says_stop():
    # some providers say "stop" for tool calls (python-genai #2868): the parser does not judge
    assert parse_doc(tool_call_doc(finish_reason="stop")).ok


def test_null_content_with_content_filter_parses_with_content_none():
    doc = completion_doc()
    doc["choices"][0]["finish_reason"] = "content_filter"
    doc["choices"][0]["message"]["content"] = None
    result = parse_doc(doc)
    assert result.ok
    assert result.completion is not None
    assert result.completion.content is None


def test_null_content_with_a_refusal_parses_with_content_none():
    doc = completion_doc()
    doc["choices"][0]["message"].update(content=None, refusal="I can't help with that.")
    result = parse_doc(doc)
    assert result.ok
    assert result.completion is not None
    assert result.completion.refusal == "I can't help with that."


def test_null_content_without_a_reason_breaks_a_required_path():
    doc = completion_doc()
    doc["choices"][0]["message"]["content"] = None
    result = parse_doc(doc)
    assert messages_of(result) == ["$.choices[0].message.content: expected string, got null"]
    assert result.violations[0].kind is ViolationKind.NULL


def test_null_content_is_fine_when_content_is_not_a_required_path():
    doc = completion_doc()
    doc["choices"][0]["message"]["content"] = None
    contract = with_required("id")
    assert parse_doc(doc, contract=contract).ok


def test_empty_string_content_is_left_to_the_semantic_layer():
    doc = completion_doc()
    doc["choices"][0]["message"]["content"] = ""
    assert parse_doc(doc).ok


# --------------------------------------------------------------------------- violations


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(id=42), "$.id: expected string, got 42"),
        (lambda d: d.update(model=None), "$.model: expected string, got null"),
        (lambda d: d.update(created="yesterday"), "$.created: expected integer, got string"),
        (lambda d: d.update(created=1.5), "$.created: expected integer, got 1.5"),
        (lambda d: d.update(object=["x"]), "$.object: expected string, got array"),
        (
            lambda d: d.update(system_fingerprint=3),
            "$.system_fingerprint: expected string or null, got 3",
        ),
        (lambda d: d.update(choices=[]), "$.choices: expected non-empty array, got empty array"),
        (lambda d: d.update(choices={}), "$.choices: expected non-empty array, got empty object"),
        (lambda d: d.pop("choices"), "$.choices: expected non-empty array, got missing"),
        (lambda d: d["choices"].__setitem__(0, "x"), "$.choices[0]: expected object, got string"),
        (
            lambda d: d["choices"][0].update(message="hi"),
            "$.choices[0].message: expected object, got string",
        ),
        (
            lambda d: d["choices"][0].pop("message"),
            "$.choices[0].message: expected object, got missing",
        ),
        (
            lambda d: d["choices"][0]["message"].update(content=42),
            "$.choices[0].message.content: expected string, got 42",
        ),
        (
            lambda d: d["choices"][0]["message"].update(content=["part"]),
            "$.choices[0].message.content: expected string, got array",
        ),
        (
            lambda d: d["choices"][0].update(finish_reason=None),
            "$.choices[0].finish_reason: expected string, got null",
        ),
        (
            lambda d: d["choices"][0].update(finish_reason=0),
            "$.choices[0].finish_reason: expected string, got 0",
        ),
        (
            lambda d: d["choices"][0].update(index="0"),
            "$.choices[0].index: expected integer, got string",
        ),
        (
            lambda d: d["choices"][0]["message"].update(tool_calls={}),
            "$.choices[0].message.tool_calls: expected array or null, got empty object",
        ),
        (lambda d: d.update(usage=None), "$.usage: expected object, got null"),
        (lambda d: d.update(usage=[1]), "$.usage: expected object or null, got array"),
        (
            lambda d: d["usage"].update(prompt_tokens=-1),
            "$.usage.prompt_tokens: expected non-negative integer, got -1",
        ),
        (
            lambda d: d["usage"].update(total_tokens=31.0),
            "$.usage.total_tokens: expected non-negative integer, got 31.0",
        ),
        (
            lambda d: d["usage"].update(completion_tokens="2"),
            "$.usage.completion_tokens: expected non-negative integer, got string",
        ),
        (
            lambda d: d["usage"].update(completion_tokens=True),
            "$.usage.completion_tokens: expected non-negative integer, got true",
        ),
        (
            lambda d: d["usage"].update(claude_cache_creation_5_m_tokens=-3),
            "$.usage.claude_cache_creation_5_m_tokens: expected non-negative integer, got -3",
        ),
        (
            lambda d: d["usage"].pop("total_tokens"),
            "$.usage.total_tokens: expected non-negative integer, got missing",
        ),
    ],
    ids=[
        "id-number",
        "model-null",
        "created-string",
        "created-float",
        "object-array",
        "fingerprint-number",
        "choices-empty",
        "choices-object",
        "choices-missing",
        "choice-string",
        "message-string",
        "message-missing",
        "content-number",
        "content-array",
        "finish-null",
        "finish-number",
        "index-string",
        "tool-calls-object",
        "usage-null",
        "usage-array",
        "tokens-negative",
        "tokens-float",
        "tokens-string",
        "tokens-bool",
        "extra-tokens-negative",
        "tokens-missing",
    ],
)
def test_a_broken_field_is_one_violation_at_its_path(mutate, expected):
    doc = completion_doc()
    mutate(doc)
    result = parse_doc(doc)
    assert messages_of(result) == [expected]
    assert not result.ok


def test_known_type_levels_unpack_in_table_order():
    assert [name for name, _ in level("")] == [
        "id",
        "object",
        "model",
        "created",
        "system_fingerprint",
    ]
    assert [name for name, _ in level("choices[]")] == ["index", "finish_reason"]
    assert [name for name, _ in level("choices[].message")] == [
        "role",
        "content",
        "refusal",
        "reasoning_content",
    ]
    assert [name for name, _ in level("choices[].message.tool_calls[]")] == ["id", "type"]
    assert [name for name, _ in level("choices[].message.tool_calls[].function")] == [
        "name",
        "arguments",
    ]


def test_a_wrong_type_reads_as_none_in_the_best_effort_completion():
    result = parse_doc(completion_doc(id=42))
    assert result.completion is not None
    assert result.completion.id is None
    assert result.completion.model == "gpt-4.1-nano-2025-04-14"


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("x", "$.choices[0].message.tool_calls[0]: expected object, got string"),
        (
            {"id": 1, "type": "function", "function": {"name": "f", "arguments": "{}"}},
            "$.choices[0].message.tool_calls[0].id: expected string, got 1",
        ),
        (
            {"id": "c", "type": "function", "function": "f"},
            "$.choices[0].message.tool_calls[0].function: expected object, got string",
        ),
        (
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}},
            "$.choices[0].message.tool_calls[0].function.arguments: expected string, got object",
        ),
    ],
    ids=["not-object", "id-number", "function-string", "arguments-object"],
)
def test_tool_call_shapes_are_checked(call, expected):
    doc = tool_call_doc()
    doc["choices"][0]["message"]["tool_calls"] = [call]
    assert messages_of(parse_doc(doc)) == [expected]


def test_a_violation_never_echoes_string_content():
    secret = "my-secret-answer-text"
    doc = completion_doc()
    doc["choices"][0]["message"]["content"] = [secret]
    doc["usage"]["prompt_tokens"] = secret
    result = parse_doc(doc)
    assert len(result.violations) == 2
    assert secret not in repr(result.violations)


def test_required_path_of_an_unknown_field_is_checked_for_presence():
    contract = with_required("id", "choices[0].message.annotations")
    doc = completion_doc()
    assert parse_doc(doc, contract=contract).ok
    del doc["choices"][0]["message"]["annotations"]
    assert messages_of(parse_doc(doc, contract=contract)) == [
        "$.choices[0].message.annotations: expected a value, got missing"
    ]


def test_required_index_past_the_end_is_reported_at_the_array():
    contract = with_required("choices[1].message.content")
    assert messages_of(parse_doc(completion_doc(), contract=contract)) == [
        "$.choices: expected non-empty array, got 1 items"
    ]


# --------------------------------------------------------------------------- not JSON


@pytest.mark.parametrize(
    ("body", "expected", "kind"),
    [
        (b"", "$: expected JSON, got empty body", ViolationKind.EMPTY_BODY),
        (b"  \r\n", "$: expected JSON, got empty body", ViolationKind.EMPTY_BODY),
        (
            b'{"id": "x", ',
            "$: expected JSON, got invalid JSON at byte 12",
            ViolationKind.INVALID_JSON,
        ),
        (
            b'{"a": "\xc3\xa9\xc3\xa9" x}',
            "$: expected JSON, got invalid JSON at byte 13",
            ViolationKind.INVALID_JSON,
        ),
        (
            b"<html>502</html>",
            "$: expected JSON, got invalid JSON at byte 0",
            ViolationKind.INVALID_JSON,
        ),
        (b"[1, 2]", "$: expected a completion object, got array", ViolationKind.NOT_OBJECT),
        (b'"text"', "$: expected a completion object, got string", ViolationKind.NOT_OBJECT),
        (b"null", "$: expected a completion object, got null", ViolationKind.NOT_OBJECT),
    ],
    ids=["empty", "whitespace", "truncated", "multibyte-offset", "html", "array", "string", "null"],
)
def test_bodies_that_are_not_a_json_object(body, expected, kind):
    result = parse_completion(body)
    assert messages_of(result) == [expected]
    assert result.violations[0].kind is kind
    assert result.completion is None


@pytest.mark.parametrize(
    ("member", "path", "at"),
    [("usage", "$.usage.prompt_tokens", 28), ("created", "$.created", 12)],
    ids=["usage", "created"],
)
def test_a_number_beyond_a_double_is_named_at_its_path_not_called_invalid_json(member, path, at):
    # Valid JSON that orjson refuses (and Python's json refuses past 4,300 digits): the
    # violation names the member and the number instead of "invalid JSON at byte N".
    digits = b"9" * 10_000
    head = b'{"usage": {"prompt_tokens": ' if member == "usage" else b'{"created": '
    body = head + digits + (b"}}" if member == "usage" else b"}")
    result = parse_completion(body)
    assert messages_of(result) == [
        f"{path}: expected a number within the range of a double (I-JSON, RFC 7493), got a "
        f"10000-character number at byte {at}"
    ]
    assert result.violations[0].kind is ViolationKind.INVALID_JSON
    assert result.completion is None


def test_error_null_member_is_not_an_error_envelope():
    assert parse_doc(completion_doc(error=None)).ok


# --------------------------------------------------------------------------- properties


@settings(max_examples=examples(300))
@given(st.binary(max_size=512))
def test_any_bytes_give_a_result_never_an_exception(body):
    result = parse_completion(body, contract=COMETAPI)
    assert isinstance(result, CompletionResult)
    assert result.ok == (not result.violations and result.error is None)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)


def _mutations():
    """A completion with one known member replaced by an arbitrary JSON value (or removed)."""
    paths = [
        ("id",),
        ("model",),
        ("created",),
        ("object",),
        ("system_fingerprint",),
        ("choices",),
        ("choices", 0),
        ("choices", 0, "index"),
        ("choices", 0, "finish_reason"),
        ("choices", 0, "message"),
        ("choices", 0, "message", "role"),
        ("choices", 0, "message", "content"),
        ("choices", 0, "message", "refusal"),
        ("choices", 0, "message", "reasoning_content"),
        ("choices", 0, "message", "tool_calls"),
        ("usage",),
        ("usage", "prompt_tokens"),
        ("usage", "completion_tokens"),
        ("usage", "total_tokens"),
        ("usage", "claude_cache_creation_1_h_tokens"),
        ("usage", "prompt_tokens_details"),
    ]
    return st.lists(
        st.tuples(st.sampled_from(paths), st.one_of(st.just(KeyError), json_values)),
        max_size=3,
    )


def _apply(doc, changes):
    for path, value in changes:
        parent = doc
        for step in path[:-1]:
            try:
                parent = parent[step]
            except (KeyError, IndexError, TypeError):
                break
        else:
            if isinstance(parent, dict) and isinstance(path[-1], str):
                if value is KeyError:
                    parent.pop(path[-1], None)
                else:
                    parent[path[-1]] = value
            elif (
                isinstance(parent, list)
                and isinstance(path[-1], int)
                and path[-1] < len(parent)
                and value is not KeyError
            ):
                parent[path[-1]] = value
    return doc


@settings(max_examples=examples(500))
@given(_mutations(), st.sampled_from([DEFAULT_REQUIRED, COMETAPI.response.required_paths]))
def test_the_fast_path_agrees_with_the_full_walk(changes, required):
    doc = _apply(completion_doc(), changes)
    contract = with_required(*required)
    fast = parse_completion(orjson.dumps(doc), contract=contract)
    slow = _parse_document_slowly(doc, required)
    if fast.error is None:  # an envelope never reaches either walk
        assert fast == slow


# --------------------------------------------------------------------------- single decisions
# Each test below pins one decision a mutation run found unpinned (docs/mutation.md).

_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


@pytest.mark.parametrize("name", _COUNTS, ids=list(_COUNTS))
def test_a_zero_token_count_is_read_as_zero_not_dropped(name):
    out: list = []
    usage = parse_usage(
        {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, name: 0}, "$.usage", out
    )
    assert out == []
    assert usage is not None
    assert getattr(usage, name) == 0


@pytest.mark.parametrize("name", _COUNTS, ids=list(_COUNTS))
def test_a_zero_token_count_is_read_as_zero_by_the_full_walk_too(name):
    # Two choices: the full walk reads this body, not the one-choice fast path.
    doc = completion_doc()
    doc["choices"] = [doc["choices"][0], doc["choices"][0]]
    doc["usage"][name] = 0
    result = parse_doc(doc)
    assert result.ok, messages_of(result)
    assert getattr(result.completion.usage, name) == 0


@pytest.mark.parametrize("name", _COUNTS, ids=list(_COUNTS))
@pytest.mark.parametrize("value", [KeyError, None], ids=["absent", "null"])
def test_a_required_usage_count_missing_beside_the_other_two_is_reported(name, value):
    # The other two counts are present, so the body is otherwise the common shape.
    doc = completion_doc()
    if value is KeyError:
        del doc["usage"][name]
    else:
        doc["usage"][name] = value
    result = parse_doc(doc)
    assert [(v.path, v.kind) for v in result.violations] == [
        (f"$.usage.{name}", ViolationKind.MISSING if value is KeyError else ViolationKind.NULL)
    ]


# Every path the one-pass reading of the common shape proves present, with and without usage.
_PROVED = (
    "id",
    "model",
    "choices",
    "choices[0]",
    "choices[0].message",
    "choices[0].message.content",
    "choices[0].finish_reason",
)
_PROVED_WITH_USAGE = (
    *_PROVED,
    "usage",
    "usage.prompt_tokens",
    "usage.completion_tokens",
    "usage.total_tokens",
)


@pytest.mark.parametrize(
    "proved", [_PROVED, _PROVED_WITH_USAGE], ids=["without-usage", "with-usage"]
)
def test_a_required_path_beyond_what_the_common_shape_proves_is_still_checked(proved):
    doc = completion_doc()
    del doc["system_fingerprint"]
    result = parse_doc(doc, contract=with_required(*proved, "system_fingerprint"))
    assert [(v.path, v.kind) for v in result.violations] == [
        ("$.system_fingerprint", ViolationKind.MISSING)
    ]
    assert parse_doc(doc, contract=with_required(*proved)).ok


def test_usage_with_only_a_bad_count_is_reported_when_the_contract_does_not_read_usage():
    doc = completion_doc(usage={"prompt_tokens": -1})
    result = parse_doc(doc, contract=None)
    assert [(v.path, v.expected) for v in result.violations] == [
        ("$.usage.prompt_tokens", "non-negative integer")
    ]
    assert parse_doc(completion_doc(usage={}), contract=None).ok


@pytest.mark.parametrize(
    "build",
    [
        lambda: Completion(
            id=None,
            model=None,
            created=None,
            system_fingerprint=None,
            content="x",
            refusal=None,
            reasoning_content=None,
            tool_calls=(),
            finish_reason="stop",
            usage=None,
            choice_count=1,
        ),
        lambda: Usage(prompt_tokens=1),
        lambda: ToolCall(index=0, id="c", type="function", name="f", arguments="{}"),
        lambda: CompletionResult(completion=None),
    ],
    ids=["completion", "usage", "tool-call", "result"],
)
def test_parsed_values_are_frozen(build):
    value = build()
    name = value.__struct_fields__[0]
    with pytest.raises(AttributeError, match="immutable"):
        setattr(value, name, None)


_WRONG_IN_COMMON_SHAPE = [
    (("id",), 5, "$.id"),
    (("id",), None, "$.id"),
    (("model",), ["m"], "$.model"),
    (("created",), "1774412483", "$.created"),
    (("created",), 1.5, "$.created"),
    (("created",), True, "$.created"),
    (("object",), 5, "$.object"),
    (("system_fingerprint",), 5, "$.system_fingerprint"),
    (("choices",), "x", "$.choices"),
    (("choices",), [], "$.choices"),
    (("choices", 0), "x", "$.choices[0]"),
    (("choices", 0, "index"), "0", "$.choices[0].index"),
    (("choices", 0, "index"), 0.0, "$.choices[0].index"),
    (("choices", 0, "finish_reason"), None, "$.choices[0].finish_reason"),
    (("choices", 0, "finish_reason"), 5, "$.choices[0].finish_reason"),
    (("choices", 0, "message"), "x", "$.choices[0].message"),
    (("choices", 0, "message", "content"), 5, "$.choices[0].message.content"),
    (("choices", 0, "message", "role"), 5, "$.choices[0].message.role"),
    (("choices", 0, "message", "refusal"), 5, "$.choices[0].message.refusal"),
    (("choices", 0, "message", "refusal"), True, "$.choices[0].message.refusal"),
    (("choices", 0, "message", "reasoning_content"), 5, "$.choices[0].message.reasoning_content"),
    (("choices", 0, "message", "tool_calls"), "x", "$.choices[0].message.tool_calls"),
    (("choices", 0, "message", "tool_calls"), [5], "$.choices[0].message.tool_calls[0]"),
    (("usage",), "x", "$.usage"),
    (("usage", "prompt_tokens"), "29", "$.usage.prompt_tokens"),
    (("usage", "prompt_tokens"), 1.5, "$.usage.prompt_tokens"),
    (("usage", "prompt_tokens"), -1, "$.usage.prompt_tokens"),
    (("usage", "completion_tokens"), True, "$.usage.completion_tokens"),
    (("usage", "total_tokens"), [], "$.usage.total_tokens"),
    (("usage", "cached_tokens"), 2.5, "$.usage.cached_tokens"),
    (("usage", "cached_tokens"), -3, "$.usage.cached_tokens"),
]


@pytest.mark.parametrize(
    ("path", "value", "reported"),
    _WRONG_IN_COMMON_SHAPE,
    ids=[f"{'.'.join(map(str, p))}={v!r}" for p, v, _ in _WRONG_IN_COMMON_SHAPE],
)
def test_one_wrong_value_in_the_common_shape_is_reported_as_the_full_walk_reports_it(
    path, value, reported
):
    doc = _apply(completion_doc(), [(path, value)])
    result = parse_doc(doc)
    assert reported in [v.path for v in result.violations]
    assert result == _parse_document_slowly(doc, COMETAPI.response.required_paths)


_RIGHT_IN_COMMON_SHAPE = [
    (("created",), None),
    (("object",), None),
    (("system_fingerprint",), None),
    (("choices", 0, "index"), None),
    (("choices", 0, "message", "role"), None),
    (("choices", 0, "message", "refusal"), "I cannot"),
    (("choices", 0, "message", "reasoning_content"), "thinking"),
    (("choices", 0, "message", "tool_calls"), []),
    (("choices", 0, "message", "tool_calls"), None),
    (("usage", "cached_tokens"), None),
    (("usage", "cached_tokens"), 0),
    (("usage", "latency_checkpoint"), "x"),
]


@pytest.mark.parametrize(
    ("path", "value"),
    _RIGHT_IN_COMMON_SHAPE,
    ids=[f"{'.'.join(map(str, p))}={v!r}" for p, v in _RIGHT_IN_COMMON_SHAPE],
)
def test_an_allowed_value_in_the_common_shape_parses_clean_as_in_the_full_walk(path, value):
    doc = _apply(completion_doc(), [(path, value)])
    result = parse_doc(doc)
    assert result.ok, messages_of(result)
    assert result == _parse_document_slowly(doc, COMETAPI.response.required_paths)


def test_an_error_envelope_without_a_contract_is_read_with_no_request_id_pattern():
    body = b'{"error": {"message": "bad key", "type": "invalid_request_error", "code": "x"}}'
    result = parse_completion(body)
    assert result.completion is None
    assert result.error is not None
    assert result.error.message == "bad key"
    assert [v.kind for v in result.violations] == [ViolationKind.ERROR_ENVELOPE]


@pytest.mark.parametrize("name", _COUNTS, ids=list(_COUNTS))
@pytest.mark.parametrize(
    "value", [-1, -7, 1.0, "3", True], ids=["minus-one", "minus-seven", "float", "string", "bool"]
)
def test_a_bad_token_count_is_reported_and_read_as_none(name, value):
    out: list = []
    usage = parse_usage(
        {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, name: value}, "$.usage", out
    )
    assert [(v.path, v.expected) for v in out] == [(f"$.usage.{name}", "non-negative integer")]
    assert usage is not None
    assert getattr(usage, name) is None
    others = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    del others[name]
    assert {n: getattr(usage, n) for n in others} == others


@pytest.mark.parametrize(
    "build",
    [
        lambda: Completion(None, None, None, None, "x", None, None, (), "stop", None, 1),
        lambda: Usage(1, 2, 3),
        lambda: ToolCall(0, "c", "function", "f", "{}"),
        lambda: CompletionResult(None),
    ],
    ids=["completion", "usage", "tool-call", "result"],
)
def test_parsed_values_are_built_by_keyword_only(build):
    with pytest.raises(TypeError, match="positional"):
        build()


def test_parse_completion_takes_the_contract_by_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        parse_completion(example("e1"), COMETAPI)  # type: ignore[misc]


def test_a_tool_call_that_is_not_an_object_does_not_hide_the_calls_after_it():
    call = {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    message = {"role": "assistant", "content": None, "tool_calls": [5, call]}
    doc = completion_doc()
    doc["choices"][0]["message"] = message
    doc["choices"][0]["finish_reason"] = "tool_calls"
    result = parse_doc(doc)
    assert [v.path for v in result.violations] == ["$.choices[0].message.tool_calls[0]"]
    assert result.completion is not None
    assert [(c.index, c.id, c.name) for c in result.completion.tool_calls] == [(1, "c2", "f")]
