"""Exact stream facts: every violation's kind, path, expected and got; every field of the
assembled answer; every timestamp and counter handed through. Written so that a changed
argument, constant or condition in ``wire/stream.py`` or ``wire/sse.py`` fails a test."""

import dataclasses

import orjson
import pytest

from chatcontract.contract import load_preset
from chatcontract.wire import (
    SSEDecoder,
    SSEEvent,
    StreamAssembler,
    StreamParser,
    StreamVerdict,
    parse_stream,
)
from chatcontract.wire.stream import MAX_VIOLATIONS

COMETAPI = load_preset("cometapi")


def data(doc: object) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def choice(delta: object, **more: object) -> dict:
    return {"index": 0, "delta": delta, **more}


def violations(*events: bytes, final: bytes = b"") -> list[tuple[str, str, str, str]]:
    parser = StreamParser()
    for piece in events:
        parser.feed(piece)
    if final:
        parser.feed(final)
    result = parser.close()
    return [(str(v.kind), v.path, v.expected, v.got) for v in result.violations]


# -- every violation, exactly ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ([1, 2], ("not_object", "$[chunk 0]", "a chunk object", "array")),
        ({"choices": "x"}, ("type", "$[chunk 0].choices", "array", "string")),
        ({"choices": ["x"]}, ("type", "$[chunk 0].choices[0]", "object", "string")),
        ({"id": 5, "choices": []}, ("type", "$[chunk 0].id", "string", "5")),
        ({"model": 5, "choices": []}, ("type", "$[chunk 0].model", "string", "5")),
        ({"created": "x", "choices": []}, ("type", "$[chunk 0].created", "integer", "string")),
        (
            {"system_fingerprint": 5, "choices": []},
            ("type", "$[chunk 0].system_fingerprint", "string", "5"),
        ),
        (
            {"choices": [choice({"content": 5})]},
            ("type", "$[chunk 0].choices[0].delta.content", "string", "5"),
        ),
        (
            {"choices": [choice({"reasoning_content": 5})]},
            ("type", "$[chunk 0].choices[0].delta.reasoning_content", "string", "5"),
        ),
        (
            {"choices": [choice({"refusal": 5})]},
            ("type", "$[chunk 0].choices[0].delta.refusal", "string", "5"),
        ),
        (
            {"choices": [choice({"tool_calls": "x"})]},
            ("type", "$[chunk 0].choices[0].delta.tool_calls", "array", "string"),
        ),
        (
            {"choices": [choice({"tool_calls": [5]})]},
            ("type", "$[chunk 0].choices[0].delta.tool_calls[0]", "object", "5"),
        ),
        (
            {"choices": [choice("x")]},
            ("type", "$[chunk 0].choices[0].delta", "object", "string"),
        ),
        (
            {"choices": [{"index": "0", "delta": {}}]},
            ("type", "$[chunk 0].choices[0].index", "integer", "string"),
        ),
        (
            {"choices": [choice({}, finish_reason=5)]},
            ("type", "$[chunk 0].choices[0].finish_reason", "string", "5"),
        ),
    ],
    ids=[
        "not-an-object",
        "choices",
        "choice",
        "id",
        "model",
        "created",
        "system-fingerprint",
        "content",
        "reasoning",
        "refusal",
        "tool-calls",
        "tool-call",
        "delta",
        "index",
        "finish-reason",
    ],
)
def test_each_wrong_type_is_reported_exactly(doc, expected):
    assert violations(data(doc)) == [expected]


def test_invalid_json_names_the_character():
    assert violations(b"data: {oops}\n\n") == [
        ("invalid_json", "$[chunk 0]", "JSON", "invalid JSON at character 1")
    ]


def test_a_chunk_cut_by_the_end_of_the_body_is_reported_as_cut():
    assert violations(b'data: {"choices": [') == [
        ("cut_chunk", "$[chunk 0]", "a complete JSON chunk", "end of stream")
    ]


def test_data_after_done_is_reported_once_exactly():
    stream = b"data: [DONE]\n\n" + data({"choices": []}) * 2
    assert violations(stream) == [("after_done", "$[after DONE]", "end of stream", "a data event")]


def test_a_body_that_is_not_sse_is_reported_exactly():
    assert violations(b"hello\nworld\n") == [("not_sse", "$", "SSE data lines", "2 other lines")]


def test_bad_tool_call_fields_are_capped_like_every_violation():
    bad = data({"choices": [choice({"tool_calls": [{"index": "x"}]})]})
    result = parse_stream([bad] * (MAX_VIOLATIONS + 20))
    assert len(result.violations) == MAX_VIOLATIONS
    assert result.verdict is StreamVerdict.MALFORMED_CHUNK


def test_bad_usage_counts_are_capped_like_every_violation():
    # Two bad counts per chunk: the cap holds however the violations arrive.
    bad = data({"choices": [choice({"content": "a"})], "usage": {"a_tokens": -1, "b_tokens": -2}})
    result = parse_stream([bad] * MAX_VIOLATIONS)
    assert len(result.violations) == MAX_VIOLATIONS
    assert result.verdict is StreamVerdict.MALFORMED_CHUNK


@pytest.mark.parametrize(
    "last",
    [
        data({"choices": [choice({"tool_calls": [{"index": "x"}]})]}),
        data({"choices": [choice({"content": 5})]}),
    ],
    ids=["bad-tool-call", "bad-content"],
)
def test_no_violation_is_kept_past_the_cap_after_usage_reached_it(last):
    # 99 violations, then a usage chunk with two more (101), then one of another kind.
    bad = data({"choices": [choice({"content": 5})]})
    usage = data({"usage": {"a_tokens": -1, "b_tokens": -2}})
    result = parse_stream([bad] * (MAX_VIOLATIONS - 1) + [usage, last])
    assert len(result.violations) == MAX_VIOLATIONS


# -- every field of the answer ----------------------------------------------------------------


def _full_stream() -> list[bytes]:
    top = {"id": "c-1", "model": "m-1", "created": 7, "system_fingerprint": "fp-1"}
    call = {"index": 0, "id": "call-1", "type": "function", "function": {"name": "f"}}
    return [
        data({**top, "choices": [choice({"role": "assistant", "refusal": "no"})]}),
        data({**top, "choices": [choice({"refusal": "pe", "reasoning_content": "th"})]}),
        data({**top, "choices": [choice({"reasoning_content": "ink"})]}),
        data({**top, "choices": [choice({"tool_calls": [5, call]})]}),
        data({**top, "choices": [choice({"tool_calls": [{"function": {"arguments": "{}"}}]})]}),
        data({**top, "choices": [choice({}, finish_reason="tool_calls")]}),
        b"data: [DONE]\n\n",
    ]


def test_as_completion_carries_every_field():
    completion = parse_stream(_full_stream()).as_completion()
    assert (completion.id, completion.model, completion.created) == ("c-1", "m-1", 7)
    assert completion.system_fingerprint == "fp-1"
    assert (completion.refusal, completion.reasoning_content) == ("nope", "think")
    assert completion.content is None  # only tool calls: no content at all
    assert completion.finish_reason == "tool_calls"
    assert completion.choice_count == 1
    [call] = completion.tool_calls
    assert (call.index, call.id, call.type, call.name, call.arguments) == (
        0,
        "call-1",
        "function",
        "f",
        "{}",
    )


def test_as_completion_of_plain_text_and_of_nothing():
    text = parse_stream([data({"choices": [choice({"content": "hi"})]})]).as_completion()
    assert (text.content, text.refusal, text.reasoning_content, text.tool_calls) == (
        "hi",
        None,
        None,
        (),
    )
    assert text.choice_count == 1
    empty = parse_stream([]).as_completion()
    assert (empty.content, empty.choice_count) == ("", 0)


# -- in-band errors ---------------------------------------------------------------------------

ENVELOPE = {"error": {"message": "upstream failed (request id: req-42)", "type": "x"}}


def test_an_in_band_error_reads_the_contracts_request_id():
    result = parse_stream([data(ENVELOPE)], contract=COMETAPI)
    assert result.verdict is StreamVerdict.INBAND_ERROR
    assert result.error is not None and result.error.request_id == "req-42"
    assert result.violations[0].path == "$[chunk 0]"


def test_an_error_event_that_is_not_json_keeps_its_text():
    result = parse_stream([b"data: x\n\n", b"event: error\ndata: upstream failed\n\n"])
    assert result.verdict is StreamVerdict.INBAND_ERROR
    assert result.error is not None and result.error.text_excerpt == "upstream failed"
    assert result.violations[-1].path == "$[chunk 1]"


def test_an_error_member_that_is_not_an_envelope_is_an_ordinary_chunk():
    result = parse_stream([data({"error": None, "choices": [choice({"content": "x"})]})])
    assert (result.verdict, result.content, result.error) == (StreamVerdict.CUT, "x", None)


@pytest.mark.parametrize(
    "push",
    [
        lambda a: a.push(SSEEvent(data='{"message": "boom"}', event="error")),
        lambda a: a.push_data('{"message": "boom"}', event="error"),
    ],
    ids=["push", "push-data"],
)
def test_the_event_type_is_handed_through(push):
    assembler = StreamAssembler()
    push(assembler)
    assert assembler.decided is StreamVerdict.INBAND_ERROR


def test_push_data_defaults_and_final_flag():
    assembler = StreamAssembler()
    assembler.push_data("{bad")
    assembler.push_data("{bad", final=True)
    kinds = [str(v.kind) for v in assembler.result().violations]
    assert kinds == ["invalid_json", "cut_chunk"]


# -- timestamps, counters, defaults -----------------------------------------------------------


def test_now_is_handed_through_every_way_in():
    assembler = StreamAssembler()
    assembler.push(SSEEvent(data='{"choices": [{"index": 0, "delta": {"content": "a"}}]}'), 3.0)
    assert assembler.first_token_at == 3.0
    other = StreamAssembler()
    other.push_data('{"choices": [{"index": 0, "delta": {"content": "a"}}]}', now=4.0)
    assert other.first_token_at == 4.0


@pytest.mark.parametrize("how", ["close", "stall"])
def test_a_first_token_flushed_at_the_end_gets_the_end_moment(how):
    parser = StreamParser()
    parser.feed(b": PING\n\n", now=1.0)
    parser.feed(b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}', now=2.0)
    result = parser.close(now=9.0) if how == "close" else parser.stall(now=9.0)
    assert result.first_token_at == 9.0


def test_the_general_path_hands_the_moment_through():
    parser = StreamParser()
    parser.feed(b': c\ndata: {"choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n', now=5.0)
    assert parser.first_token_at == 5.0


@pytest.mark.parametrize(
    ("delta_first", "expected"),
    [
        ({"role": "assistant", "content": ""}, 2.0),  # an empty content is not a token
        ({"role": "assistant", "content": "a"}, 1.0),
        ({"role": "assistant", "reasoning_content": "r"}, 1.0),
    ],
    ids=["empty-role-chunk", "role-and-content", "role-and-reasoning"],
)
def test_the_first_token_through_the_general_walk(delta_first, expected):
    parser = StreamParser()
    parser.feed(data({"choices": [choice(delta_first)]}), now=1.0)
    parser.feed(data({"choices": [choice({"role": "assistant", "content": "b"})]}), now=2.0)
    parser.feed(data({"choices": [choice({"role": "assistant", "content": "c"})]}), now=3.0)
    assert parser.first_token_at == expected


def test_content_with_a_finish_reason_in_one_chunk_keeps_both():
    stream = [data({"choices": [choice({"content": "done"}, finish_reason="stop")]})]
    result = parse_stream([*stream, b"data: [DONE]\n\n"])
    assert (result.content, result.finish_reason, result.verdict) == (
        "done",
        "stop",
        StreamVerdict.COMPLETE,
    )


def test_snapshot_and_close_count_pings_and_other_lines():
    parser = StreamParser()
    parser.feed(b": PING\n\n: PING\n\n")
    assert parser.snapshot().ping_count == 2
    other = StreamParser()
    other.feed(b"hello\n\n")
    assert other.snapshot().verdict is StreamVerdict.MALFORMED_CHUNK
    assert other.close().verdict is StreamVerdict.MALFORMED_CHUNK


def test_the_assemblers_result_defaults_count_nothing():
    result = StreamAssembler().result()
    assert (result.verdict, result.ping_count, result.violations) == (StreamVerdict.CUT, 0, ())


def test_close_defaults_to_a_clean_close():
    parser = StreamParser()
    parser.feed(data({"choices": [choice({"content": "a"})]}))
    assert parser.close().verdict is StreamVerdict.CUT


def test_feeding_after_close_says_what_to_do():
    parser = StreamParser()
    parser.close()
    with pytest.raises(RuntimeError, match=r"^StreamParser\.feed\(\) called after close\(\); "):
        parser.feed(b"")


def test_refusal_and_reasoning_pieces_join_without_separator():
    assembler = StreamAssembler()
    mark = assembler.text_mark()
    for text in ("a", "b"):
        assembler.push_data(
            orjson.dumps({"choices": [choice({"reasoning_content": text})]}).decode()
        )
        assembler.push_data(orjson.dumps({"choices": [choice({"refusal": text})]}).decode())
    assert assembler.text_since(mark) == ("", "ab")
    assert assembler.result().refusal == "ab"


# -- the decoder's fields ---------------------------------------------------------------------


def test_an_id_reaches_events_read_by_the_fast_path():
    decoder = SSEDecoder()
    decoder.feed(b"id: 7\n\n")
    [event] = decoder.feed(b"data: x\n\n")
    assert event.id == "7"


def test_invalid_utf8_in_an_event_name_or_id_is_replaced():
    decoder = SSEDecoder()
    got = decoder.feed(b"event: \xff\nid: \xfe\ndata: x\n\n")
    assert [(e.event, e.id) for e in got] == [("\ufffd", "\ufffd")]


def test_carried_bytes_count_each_joined_byte():
    decoder = SSEDecoder()
    line = b"data: " + b"x" * 100
    for i in range(len(line)):
        decoder.feed(line[i : i + 1])
    decoder.feed(b"\n\n")
    assert len(line) <= decoder.carried_bytes <= 2 * len(line)


# -- only choice 0, only real tokens -----------------------------------------------------------


@pytest.mark.parametrize("field", ["reasoning_content", "refusal", "content"])
def test_another_choices_text_is_not_assembled(field):
    result = parse_stream([data({"choices": [{"index": 1, "delta": {field: "x"}}]})])
    assert (result.content, result.reasoning_content, result.refusal) == ("", "", "")
    assert result.first_token_at is None


@pytest.mark.parametrize(
    "tool_calls", ["x", [], [{"index": "x"}]], ids=["not-a-list", "empty", "bad-call"]
)
def test_tool_calls_without_a_call_are_not_a_first_token(tool_calls):
    parser = StreamParser()
    parser.feed(data({"choices": [choice({"tool_calls": tool_calls})]}), now=1.0)
    parser.feed(data({"choices": [choice({"content": "a"})]}), now=2.0)
    assert parser.first_token_at == 2.0


def test_a_bad_tool_call_does_not_hide_the_next_one():
    call = {"index": 0, "id": "call-1", "function": {"name": "f", "arguments": "{}"}}
    result = parse_stream([data({"choices": [choice({"tool_calls": [{"index": "x"}, call]})]})])
    [assembled] = result.tool_calls
    assert (assembled.id, assembled.name) == ("call-1", "f")


def test_no_fingerprint_sent_is_none():
    result = parse_stream([data({"choices": [choice({"content": "a"})]})])
    assert result.system_fingerprint is None


def test_a_custom_request_id_pattern_reads_in_band_errors():
    errors = dataclasses.replace(COMETAPI.errors, request_id_pattern=r"trace=(\w+)")
    contract = dataclasses.replace(COMETAPI, errors=errors)
    envelope = {"error": {"message": "upstream failed trace=abc9", "type": "x"}}
    result = parse_stream([data(envelope)], contract=contract)
    assert result.error is not None and result.error.request_id == "abc9"


def test_content_chunks_without_an_index_take_the_content_only_shortcut(monkeypatch):
    walked = []
    general = StreamAssembler._choice

    def counting(self, choice_, n, position, now):
        walked.append(n)
        return general(self, choice_, n, position, now)

    monkeypatch.setattr(StreamAssembler, "_choice", counting)
    result = parse_stream([data({"choices": [{"delta": {"content": w}}]}) for w in "abc"])
    assert result.content == "abc"
    assert walked == []


# -- single decisions a mutation run found unpinned (docs/mutation.md) -------------------------


@pytest.mark.parametrize(
    "event", ["message", "content_block_delta", "delta", "done", "", "errors"], ids=str
)
def test_only_the_error_event_type_makes_a_chunk_an_in_band_error(event):
    assembler = StreamAssembler()
    assembler.push_data(
        orjson.dumps({"choices": [choice({"content": "hi"})]}).decode(), event=event
    )
    result = assembler.result()
    assert result.error is None
    assert result.content == "hi"


def test_tool_calls_since_a_mark_give_new_calls_whole_and_old_calls_their_new_text():
    assembler = StreamAssembler()

    def push(call: dict) -> None:
        doc = {"choices": [choice({"tool_calls": [call]})]}
        assembler.push_data(orjson.dumps(doc).decode())

    push({"index": 0, "id": "c0", "function": {"name": "f", "arguments": '{"a"'}})
    marks = assembler.tool_marks()
    assert marks == {0: 1}
    assert assembler.tool_calls_since(marks) == []
    push({"index": 0, "function": {"arguments": ": 1}"}})
    push({"index": 1, "id": "c1", "function": {"name": "g", "arguments": "{}"}})
    assert assembler.tool_calls_since(marks) == [(0, None, None, ": 1}"), (1, "c1", "g", "{}")]
    assert assembler.tool_calls_since(assembler.tool_marks()) == []


def test_keep_alives_are_the_decoders_comments_plus_blank_data_events():
    parser = StreamParser()
    parser.feed(b": ping\n\ndata: \n\n" + data({"choices": [choice({"content": "a"})]}))
    assert parser.close().ping_count == 2


def test_done_seen_is_false_until_done_arrives():
    parser = StreamParser()
    parser.feed(data({"choices": [choice({"content": "a"}, finish_reason="stop")]}))
    assert parser.done_seen is False
    assert parser.assembler.done_seen is False
    parser.feed(b"data: [DONE]\n\n")
    assert parser.done_seen is True
    assert parser.assembler.done_seen is True


def test_the_parser_hands_out_its_assembler():
    parser = StreamParser()
    assert isinstance(parser.assembler, StreamAssembler)
    parser.feed(data({"choices": [choice({"content": "a"})]}))
    assert parser.assembler.text_since((0, 0)) == ("a", "")


@pytest.mark.parametrize(
    "call",
    [
        lambda: StreamAssembler().push_data("{}", 1.0),  # type: ignore[misc]
        lambda: StreamAssembler().result(True),  # type: ignore[misc]
        lambda: parse_stream([], COMETAPI),  # type: ignore[misc]
    ],
    ids=["push_data-now", "result-stalled", "parse_stream-contract"],
)
def test_options_are_given_by_keyword_only(call):
    with pytest.raises(TypeError, match="positional"):
        call()


def test_a_call_with_hundreds_of_fragments_is_not_reported_again_when_unchanged():
    # Large counts are not cached small ints: the mark must be compared by value.
    assembler = StreamAssembler()
    for _ in range(300):
        doc = {"choices": [choice({"tool_calls": [{"index": 0, "function": {"arguments": "x"}}]})]}
        assembler.push_data(orjson.dumps(doc).decode())
    marks = assembler.tool_marks()
    assert marks == {0: 300}
    assert assembler.tool_calls_since(marks) == []


@pytest.mark.parametrize("index", [-1, 1, 2], ids=["negative", "one", "two"])
def test_only_the_choice_with_index_zero_is_assembled(index):
    doc = {"choices": [choice({"content": "other"}, finish_reason="stop") | {"index": index}]}
    result = parse_stream([data(doc), data({"choices": [choice({"content": "mine"})]})])
    assert (result.content, result.finish_reason) == ("mine", None)


@pytest.mark.parametrize(
    "payload", ["\u00a0", "\u3000\u2003", "\u3000[DONE]"], ids=["nbsp", "wide-spaces", "done"]
)
def test_data_of_unicode_spaces_is_a_keep_alive_and_spaced_done_is_done(payload):
    parser = StreamParser(expect_usage=False)
    parser.feed(data({"choices": [choice({"content": "a"}, finish_reason="stop")]}))
    parser.feed(("data: " + payload + "\n\n").encode())
    result = parser.close()
    assert result.violations == ()
    assert (result.ping_count, result.done_seen) == (
        (0, True) if payload.endswith("[DONE]") else (1, False)
    )


def test_every_choice_is_shape_checked_when_the_first_is_plain_content():
    doc = {"choices": [choice({"content": "a"}), choice({"content": 5}) | {"index": 1}]}
    assert violations(data(doc)) == [("type", "$[chunk 0].choices[1].delta.content", "string", "5")]


def test_a_stream_result_is_frozen():
    result = parse_stream([data({"choices": [choice({"content": "a"})]})])
    with pytest.raises(AttributeError, match="immutable"):
        result.content = "b"  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional"):
        type(result)(*(getattr(result, name) for name in result.__struct_fields__))


@pytest.mark.parametrize("event", ["message", "delta", "content_block_delta", ""], ids=str)
def test_an_unparsable_chunk_of_another_event_type_is_invalid_json_not_an_error(event):
    assembler = StreamAssembler()
    assembler.push_data("{bad", event=event)
    result = assembler.result()
    assert result.error is None
    assert [(str(v.kind), v.path) for v in result.violations] == [("invalid_json", "$[chunk 0]")]


def test_has_tool_calls_turns_true_with_the_first_fragment_of_choice_zero():
    assembler = StreamAssembler()
    assert assembler.has_tool_calls is False
    doc = {"choices": [choice({"tool_calls": [{"index": 0, "id": "c"}]})]}
    assembler.push_data(orjson.dumps(doc).decode())
    assert assembler.has_tool_calls is True


def test_an_assembler_takes_its_contract_by_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        StreamAssembler(COMETAPI)  # type: ignore[misc]


def test_push_reads_an_event_as_not_final_unless_told():
    assembler = StreamAssembler()
    assembler.push(SSEEvent(data="{bad"))
    assembler.push(SSEEvent(data="{cut"), final=True)
    assert [(str(v.kind), v.path) for v in assembler.result().violations] == [
        ("invalid_json", "$[chunk 0]"),
        ("cut_chunk", "$[chunk 1]"),
    ]


def test_finish_reason_is_the_last_one_of_choice_zero_so_far():
    assembler = StreamAssembler()
    assert assembler.finish_reason is None
    doc = {"choices": [choice({"content": "a"}, finish_reason="length")]}
    assembler.push_data(orjson.dumps(doc).decode())
    assert assembler.finish_reason == "length"


def test_a_parser_takes_its_contract_by_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        StreamParser(COMETAPI)  # type: ignore[misc]
