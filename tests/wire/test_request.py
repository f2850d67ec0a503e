"""check_request: field names and types, cautions as warnings, never the text of a message."""

from dataclasses import FrozenInstanceError, replace
from types import MappingProxyType

import orjson
import pytest
from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.contract import RequestSpec, load_preset
from chatcontract.wire import RequestCheck, ViolationKind, check_request, check_request_bytes
from chatcontract.wire.request import request_errors, requested_max_tokens

COMETAPI = load_preset("cometapi")
ROLE_ERROR = "$.messages[0].role: expected one of system, developer, user, assistant, tool, got "
SECRET = "sk-live-PROMPT-SECRET please summarise the merger memo"


def body(**overrides):
    doc = {
        "model": "gpt-4.1-nano",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": SECRET},
        ],
        "max_tokens": 16,
    }
    doc.update(overrides)
    return {name: value for name, value in doc.items() if value is not ...}


def errors_of(check: RequestCheck) -> list[str]:
    return [str(error) for error in check.errors]


def test_a_minimal_request_is_ok_and_its_facts_are_recorded():
    check = check_request(
        body(stream=True, stream_options={"include_usage": True}), contract=COMETAPI
    )
    assert check.ok
    assert check.errors == ()
    assert check.warnings == ()
    assert check.fields == ("max_tokens", "messages", "model", "stream", "stream_options")
    assert check.model == "gpt-4.1-nano"
    assert check.stream is True
    assert check.include_usage is True
    assert check.message_count == 2
    assert check.roles == ("system", "user")
    assert check.max_tokens == 16


def test_the_contract_fixture_passes():
    assert check_request(COMETAPI.request.fixture, contract=COMETAPI).ok


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"model": ...}, "$.model: expected non-empty string, got missing"),
        ({"messages": ...}, "$.messages: expected non-empty array, got missing"),
        ({"model": None}, "$.model: expected non-empty string, got null"),
        ({"model": ""}, "$.model: expected non-empty string, got empty string"),
        ({"model": 4}, "$.model: expected non-empty string, got 4"),
        ({"messages": []}, "$.messages: expected non-empty array, got empty array"),
        ({"messages": "hi"}, "$.messages: expected non-empty array, got string"),
        ({"stream": "true"}, "$.stream: expected boolean, got string"),
        ({"temperature": "0.2"}, "$.temperature: expected number, got string"),
        ({"top_p": True}, "$.top_p: expected number, got true"),
        ({"temperature": float("nan")}, "$.temperature: expected number, got nan"),
        ({"top_p": float("inf")}, "$.top_p: expected number, got inf"),
        ({"presence_penalty": float("-inf")}, "$.presence_penalty: expected number, got -inf"),
        ({"max_tokens": 0}, "$.max_tokens: expected positive integer, got 0"),
        ({"max_tokens": "abc"}, "$.max_tokens: expected positive integer, got string"),
        (
            {"max_completion_tokens": 1.5},
            "$.max_completion_tokens: expected positive integer, got 1.5",
        ),
        ({"n": -1}, "$.n: expected positive integer, got -1"),
        ({"tools": {}}, "$.tools: expected array, got empty object"),
        ({"stream_options": True, "stream": True}, "$.stream_options: expected object, got true"),
        (
            {"stream_options": {"include_usage": "yes"}, "stream": True},
            "$.stream_options.include_usage: expected boolean, got string",
        ),
    ],
    ids=[
        "model-missing",
        "messages-missing",
        "model-null",
        "model-empty",
        "model-number",
        "messages-empty",
        "messages-string",
        "stream-string",
        "temperature-string",
        "top-p-bool",
        "temperature-nan",
        "top-p-infinite",
        "presence-penalty-minus-infinite",
        "max-tokens-zero",
        "max-tokens-string",
        "max-completion-float",
        "n-negative",
        "tools-object",
        "stream-options-bool",
        "include-usage-string",
    ],
)
def test_field_errors(overrides, expected):
    check = check_request(body(**overrides), contract=COMETAPI)
    assert not check.ok
    assert errors_of(check) == [expected]


def test_null_optional_fields_are_accepted():
    assert check_request(body(temperature=None, tools=None, stop=None)).ok


def test_unknown_fields_are_left_alone():
    assert check_request(body(fallbacks=["x"], metadata={"a": 1})).ok


def test_contract_required_fields_beyond_model_and_messages():
    contract = replace(
        COMETAPI, request=RequestSpec(required=("model", "messages", "max_tokens", "user"))
    )
    assert errors_of(check_request(body(max_tokens=...), contract=contract)) == [
        "$.max_tokens: expected positive integer, got missing",
        "$.user: expected string, got missing",
    ]


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("hi", "$.messages[0]: expected object, got string"),
        (
            {"content": "x"},
            ROLE_ERROR + "missing",
        ),
        (
            {"role": "function", "content": "x"},
            ROLE_ERROR + "'function'",
        ),
        (
            {"role": SECRET, "content": "x"},
            ROLE_ERROR + "string",
        ),
        ({"role": "user"}, "$.messages[0].content: expected string or array, got missing"),
        (
            {"role": "user", "content": None},
            "$.messages[0].content: expected string or array, got null",
        ),
        ({"role": "user", "content": 3}, "$.messages[0].content: expected string or array, got 3"),
        (
            {"role": "user", "content": [{"text": SECRET}]},
            '$.messages[0].content[0]: expected object with a "type", got object',
        ),
        (
            {"role": "assistant", "content": None},
            "$.messages[0].content: expected string or array, got null",
        ),
        (
            {"role": "assistant", "content": "x", "tool_calls": {}},
            "$.messages[0].tool_calls: expected array, got empty object",
        ),
        (
            {"role": "tool", "content": "42"},
            "$.messages[0].tool_call_id: expected non-empty string, got missing",
        ),
        (
            {"role": "tool", "content": "42", "tool_call_id": 7},
            "$.messages[0].tool_call_id: expected non-empty string, got 7",
        ),
    ],
    ids=[
        "not-object",
        "role-missing",
        "role-unknown",
        "role-free-text",
        "content-missing",
        "content-null",
        "content-number",
        "part-without-type",
        "assistant-null-no-tools",
        "tool-calls-object",
        "tool-without-id",
        "tool-id-number",
    ],
)
def test_message_errors(message, expected):
    assert errors_of(check_request(body(messages=[message]))) == [expected]


def test_assistant_tool_call_turn_may_have_null_or_no_content():
    call = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": call},
        {"role": "assistant", "tool_calls": call},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {
            "role": "developer",
            "content": [
                {"type": "text", "text": "x"},
                {"type": "image_url", "image_url": {"url": "https://x"}},
            ],
        },
    ]
    check = check_request(body(messages=messages))
    assert check.ok, errors_of(check)
    assert check.roles == ("user", "assistant", "tool", "developer")


# --------------------------------------------------------------------------- warnings


def test_temperature_and_top_p_together_quote_the_contract_caution():
    check = check_request(body(temperature=0.2, top_p=0.9), contract=COMETAPI)
    assert check.ok
    assert check.warnings == ("temperature+top_p: CometAPI advises against setting both",)


def test_the_default_caution_is_openais():
    assert check_request(body(temperature=0.2, top_p=0.9)).warnings == (
        "temperature+top_p: OpenAI recommends altering one or the other, not both",
    )


def test_one_of_the_two_is_fine():
    assert check_request(body(temperature=0.2), contract=COMETAPI).warnings == ()


def test_a_dotted_caution_field_and_a_caution_without_fields():
    spec = RequestSpec(
        cautions=("stream_options.include_usage: some providers reject it", "free text caution")
    )
    contract = replace(COMETAPI, request=spec)
    check = check_request(
        body(stream=True, stream_options={"include_usage": True}), contract=contract
    )
    assert check.warnings == ("stream_options.include_usage: some providers reject it",)


@pytest.mark.parametrize("stream", [False, ...], ids=["false", "absent"])
def test_stream_options_without_stream_is_a_warning(stream):
    check = check_request(body(stream=stream, stream_options={"include_usage": True}))
    assert check.ok
    assert check.warnings == (
        "stream_options: set without stream: true; the API ignores or rejects it",
    )
    assert check.include_usage is True


# --------------------------------------------------------------------------- privacy


def test_message_text_never_appears_in_the_result():
    bad = body(
        messages=[
            {"role": "user", "content": SECRET},
            {"role": SECRET, "content": [SECRET]},
            {"role": "tool", "content": SECRET, "tool_call_id": None},
        ],
        temperature=SECRET,
    )
    check = check_request(bad, contract=COMETAPI)
    assert len(check.errors) == 4
    for text in (repr(check), str(check), " ".join(errors_of(check))):
        assert "PROMPT-SECRET" not in text
        assert "merger" not in text


def test_max_tokens_prefers_max_completion_tokens():
    assert check_request(body(max_completion_tokens=32)).max_tokens == 32


# --------------------------------------------------------------------------- bytes


def test_check_request_bytes_decodes_then_checks():
    assert check_request_bytes(orjson.dumps(body()), contract=COMETAPI).ok


@pytest.mark.parametrize(
    ("raw", "expected", "kind"),
    [
        (b"", "$: expected JSON, got empty body", ViolationKind.INVALID_JSON),
        (
            b'{"model": ',
            "$: expected JSON, got invalid JSON at byte 10",
            ViolationKind.INVALID_JSON,
        ),
        (b"[1]", "$: expected a request object, got array", ViolationKind.NOT_OBJECT),
    ],
    ids=["empty", "truncated", "array"],
)
def test_check_request_bytes_rejects_non_objects(raw, expected, kind):
    check = check_request_bytes(raw)
    assert errors_of(check) == [expected]
    assert check.errors[0].kind is kind


def test_a_non_mapping_is_a_programming_error():
    with pytest.raises(TypeError, match="takes a mapping"):
        check_request([("model", "x")])  # type: ignore[arg-type]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["role", "content", "tool_calls", "tool_call_id", "type", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=8,
)


@settings(max_examples=examples(300))
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "model",
                "messages",
                "stream",
                "stream_options",
                "temperature",
                "top_p",
                "max_tokens",
                "n",
                "tools",
                "stop",
                "x",
            ]
        ),
        json_values,
        max_size=6,
    )
)
def test_any_json_object_gives_a_check(doc):
    check = check_request(doc, contract=COMETAPI)
    assert check.ok == (not check.errors)


# --------------------------------------------------------------------------- single decisions
# Each test below pins one decision a mutation run found unpinned (docs/mutation.md).

_BASE = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

_FIELD_CASES = [
    ("stop", "END", 5),
    ("stop", ["a"], {"a": 1}),
    ("seed", 7, 7.0),
    ("seed", -3, "7"),
    ("logprobs", True, 1),
    ("user", "u-1", 1),
    ("reasoning_effort", "low", 1),
    ("parallel_tool_calls", False, 0),
    ("tool_choice", "auto", 1),
    ("n", 1, 0),
    ("top_logprobs", 0, -1),
    ("temperature", 1, "1"),
]


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    _FIELD_CASES,
    ids=[f"{field}-{type(good).__name__}" for field, good, _ in _FIELD_CASES],
)
def test_each_field_takes_its_type_and_rejects_another(field, good, bad):
    def type_errors(value: object) -> list[str]:
        check = check_request({**_BASE, field: value})
        return [v.path for v in check.errors if v.kind is ViolationKind.TYPE]

    assert type_errors(good) == []
    assert type_errors(bad) == [f"$.{field}"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"messages": _BASE["messages"]}, ViolationKind.MISSING),
        ({**_BASE, "model": None}, ViolationKind.NULL),
    ],
    ids=["missing", "null"],
)
def test_a_required_field_missing_and_null_are_told_apart(body, kind):
    errors = [v for v in check_request(body).errors if v.path == "$.model"]
    assert [v.kind for v in errors] == [kind]


def test_a_request_without_an_array_of_messages_counts_none():
    assert check_request({"model": "m", "messages": "hi"}).message_count == 0


def test_a_body_that_is_not_an_object_describes_nothing():
    check = check_request_bytes(b"[1, 2]")
    assert (check.include_usage, check.message_count, check.stream) == (False, 0, False)


def test_a_request_check_is_frozen():
    check = check_request(_BASE)
    with pytest.raises(FrozenInstanceError):
        check.model = "other"  # type: ignore[misc]


_CALL = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]


@pytest.mark.parametrize(
    ("message", "errors"),
    [
        (
            {"role": "user", "content": None, "tool_calls": _CALL},
            ["$.messages[0].content"],
        ),
        (
            {"role": "developer", "tool_calls": _CALL},
            ["$.messages[0].content"],
        ),
        (
            {"role": "agent", "content": None, "tool_calls": _CALL},
            ["$.messages[0].role", "$.messages[0].content"],
        ),
        ({"role": "assistant", "content": None, "tool_calls": _CALL}, []),
        ({"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}, []),
        ({"role": "assistant", "content": None, "tool_calls": []}, ["$.messages[0].content"]),
    ],
    ids=[
        "user-with-calls-needs-content",
        "developer-with-calls-needs-content",
        "unknown-role-sorting-before-assistant-needs-content",
        "assistant-calls-without-content",
        "assistant-legacy-function-call-without-content",
        "assistant-empty-calls-needs-content",
    ],
)
def test_only_an_assistant_turn_that_calls_tools_may_omit_its_content(message, errors):
    check = check_request({"model": "m", "messages": [message]})
    assert [v.path for v in check.errors] == errors


@pytest.mark.parametrize(
    ("message", "path", "kind"),
    [
        ({"role": "user"}, "$.messages[0].content", ViolationKind.MISSING),
        ({"role": "user", "content": None}, "$.messages[0].content", ViolationKind.NULL),
        ({"role": "user", "content": 3}, "$.messages[0].content", ViolationKind.TYPE),
        ({"content": "x"}, "$.messages[0].role", ViolationKind.MISSING),
        ({"role": "agent", "content": "x"}, "$.messages[0].role", ViolationKind.TYPE),
        ({"role": "tool", "content": "x"}, "$.messages[0].tool_call_id", ViolationKind.MISSING),
        (
            {"role": "tool", "content": "x", "tool_call_id": None},
            "$.messages[0].tool_call_id",
            ViolationKind.TYPE,
        ),
        (
            {"role": "tool", "content": "x", "tool_call_id": " "},
            "$.messages[0].tool_call_id",
            ViolationKind.TYPE,
        ),
    ],
    ids=[
        "content-missing",
        "content-null",
        "content-number",
        "role-missing",
        "role-unknown",
        "tool-call-id-missing",
        "tool-call-id-null",
        "tool-call-id-blank",
    ],
)
def test_a_message_error_says_missing_null_or_wrong_type(message, path, kind):
    check = check_request({"model": "m", "messages": [message]})
    assert [(v.path, v.kind) for v in check.errors] == [(path, kind)]


@pytest.mark.parametrize(
    ("overrides", "stream", "include_usage"),
    [
        ({"stream": True, "stream_options": {"include_usage": True}}, True, True),
        ({"stream": 1, "stream_options": {"include_usage": 1}}, False, False),
        ({"stream": 1.0, "stream_options": {"include_usage": 1.0}}, False, False),
        ({"stream": "true", "stream_options": {"include_usage": "true"}}, False, False),
    ],
    ids=["booleans", "one", "one-point-zero", "strings"],
)
def test_stream_and_include_usage_are_facts_only_when_literally_true(
    overrides, stream, include_usage
):
    check = check_request({**_BASE, **overrides})
    assert (check.stream, check.include_usage) == (stream, include_usage)
    type_errors = {"$.stream", "$.stream_options.include_usage"} & {v.path for v in check.errors}
    assert bool(type_errors) is (not stream)


@pytest.mark.parametrize(
    "call",
    [
        lambda: check_request(_BASE, COMETAPI),  # type: ignore[misc]
        lambda: check_request_bytes(orjson.dumps(_BASE), COMETAPI),  # type: ignore[misc]
    ],
    ids=["check_request", "check_request_bytes"],
)
def test_the_contract_is_passed_by_keyword_only(call):
    with pytest.raises(TypeError, match="positional argument"):
        call()


@pytest.mark.parametrize(
    ("stream", "warned"),
    [(True, False), (1, True), (1.0, True), (False, True)],
    ids=["true", "one", "one-point-zero", "false"],
)
def test_stream_options_are_only_meaningful_with_stream_literally_true(stream, warned):
    check = check_request({**_BASE, "stream": stream, "stream_options": {"include_usage": True}})
    assert (
        "stream_options: set without stream: true; the API ignores or rejects it" in check.warnings
    ) is warned


@pytest.mark.parametrize("value", [0, 1, 5, 20], ids=["zero", "one", "five", "twenty"])
def test_top_logprobs_takes_any_non_negative_integer(value):
    assert check_request({**_BASE, "top_logprobs": value}).ok


def test_a_request_check_is_built_by_keyword_only():
    with pytest.raises(TypeError, match="positional argument"):
        RequestCheck((), (), (), None, False, False, 0, (), None)  # type: ignore[misc]


# --------------------------------------------------------------------------- dict fast path
# A parsed JSON body is a dict: its own fields are type-checked (not the whole table), and
# plain fields are looked up directly. Any other mapping takes the general way; both agree.


@settings(max_examples=examples(300))
@given(
    st.dictionaries(
        st.sampled_from(["model", "messages", "stream", "stream_options", "temperature", "top_p",
                         "max_tokens", "seed", "stop", "x"]),
        json_values,
        max_size=6,
    )
)  # fmt: skip
def test_a_dict_body_and_the_same_read_only_mapping_get_the_same_check(doc):
    assert check_request(doc, contract=COMETAPI) == check_request(
        MappingProxyType(doc), contract=COMETAPI
    )


def test_wrong_types_are_reported_in_the_table_order_whatever_the_body_order():
    check = check_request({"seed": "7", **_BASE, "temperature": "hot", "stream": 1})
    assert [error.path for error in check.errors] == ["$.stream", "$.temperature", "$.seed"]


def test_a_read_only_mapping_body_and_messages_are_checked_like_dicts():
    message = MappingProxyType({"role": "user", "content": 5})
    check = check_request(MappingProxyType({"model": "m", "messages": [message], "n": 0}))
    assert [error.path for error in check.errors] == ["$.n", "$.messages[0].content"]
    assert check.roles == ("user",)


@pytest.mark.parametrize(
    ("options", "warned"),
    [({"include_usage": True}, True), ({"include_usage": None}, False), ({}, False)],
    ids=["set", "null", "absent"],
)
def test_a_dotted_caution_field_is_looked_up_in_a_dict_body(options, warned):
    spec = RequestSpec(cautions=("stream_options.include_usage: some providers reject it",))
    contract = replace(COMETAPI, request=spec)
    check = check_request(body(stream=True, stream_options=options), contract=contract)
    assert bool(check.warnings) == warned


# --------------------------------------------------------------------------- errors alone
# ``request_errors`` is what a client checks before it sends: the same errors as
# ``check_request``, without the facts.

_STRICTER = replace(
    COMETAPI, request=RequestSpec(required=("model", "messages", "max_tokens", "stream_options.x"))
)


@settings(max_examples=examples(300))
@given(
    st.dictionaries(
        st.sampled_from(["model", "messages", "stream", "stream_options", "temperature",
                         "max_tokens", "max_completion_tokens", "tools", "x"]),
        json_values,
        max_size=6,
    ),
    st.sampled_from([COMETAPI, _STRICTER, None]),
)  # fmt: skip
def test_request_errors_are_the_errors_check_request_finds(doc, contract):
    expected = check_request(doc, contract=contract)
    assert request_errors(doc, contract=contract) == expected.errors
    assert request_errors(MappingProxyType(doc), contract=contract) == expected.errors
    assert requested_max_tokens(doc) == expected.max_tokens


@pytest.mark.parametrize(
    ("message", "paths"),
    [
        ({"role": "user", "content": "hi"}, []),
        ({"role": "user", "content": 5}, ["$.messages[1].content"]),
        ({"role": "user", "content": None}, ["$.messages[1].content"]),
        ({"role": "user", "content": [{"type": "text"}, 3]}, ["$.messages[1].content[1]"]),
        ({"role": "tool", "content": "x"}, ["$.messages[1].tool_call_id"]),
        ({"role": "user", "content": "x", "tool_calls": 1}, ["$.messages[1].tool_calls"]),
        ("hi", ["$.messages[1]"]),
    ],
    ids=["string", "number", "null", "bad-part", "tool-without-id", "calls-not-array", "text"],
)
def test_a_message_error_names_the_message_by_its_index(message, paths):
    doc = {"model": "m", "messages": [{"role": "user", "content": "first"}, message]}
    assert [error.path for error in request_errors(doc)] == paths


def test_request_errors_of_a_non_mapping_is_a_programming_error():
    with pytest.raises(TypeError, match=r"request_errors\(\) takes a mapping"):
        request_errors([("model", "x")])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"max_tokens": 16}, 16),
        ({"max_completion_tokens": 8, "max_tokens": 16}, 8),
        ({"max_completion_tokens": 0, "max_tokens": 16}, 16),
        ({"max_tokens": True}, None),
        ({"max_tokens": 0}, None),
        ({"max_tokens": -3}, None),
        ({"max_tokens": 1}, 1),
        ({}, None),
    ],
    ids=["max-tokens", "completion-first", "zero-skipped", "bool", "zero", "negative", "one",
         "none"],
)  # fmt: skip
def test_requested_max_tokens(doc, expected):
    assert requested_max_tokens(doc) == expected


def test_request_errors_takes_the_contract_by_keyword_only():
    with pytest.raises(TypeError):
        request_errors({"model": "m", "messages": []}, COMETAPI)  # type: ignore[misc]


@pytest.mark.parametrize("make", [dict, MappingProxyType], ids=["dict", "mapping"])
def test_a_nested_required_field_is_found_where_it_is(make):
    doc = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
           "max_tokens": 5, "stream_options": {"x": 1}}  # fmt: skip
    assert request_errors(make(doc), contract=_STRICTER) == ()
    del doc["stream_options"]
    assert [e.path for e in request_errors(make(doc), contract=_STRICTER)] == ["$.stream_options.x"]


@pytest.mark.parametrize(
    ("make", "lookups", "type_checks"),
    [(dict, 0, 1), (MappingProxyType, 2, 0)],
    ids=["dict-reads-its-fields-directly", "other-mapping-the-general-way"],
)
def test_a_dict_body_takes_the_short_way_and_any_other_mapping_the_general_one(
    monkeypatch, make, lookups, type_checks
):
    """The same errors either way (above); this pins which way each body takes: a dict's
    top-level required fields are read without ``_lookup`` and its types checked by
    ``_types_ok`` first, any other mapping goes through ``_lookup`` and the whole table."""
    import chatcontract.wire.request as module

    calls = {"lookup": 0, "types_ok": 0}
    lookup, types_ok = module._lookup, module._types_ok

    def counted_lookup(body, name):
        calls["lookup"] += 1
        return lookup(body, name)

    def counted_types_ok(body):
        calls["types_ok"] += 1
        return types_ok(body)

    monkeypatch.setattr(module, "_lookup", counted_lookup)
    monkeypatch.setattr(module, "_types_ok", counted_types_ok)
    doc = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert request_errors(make(doc)) == ()
    assert calls == {"lookup": lookups, "types_ok": type_checks}
