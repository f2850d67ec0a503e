"""Streams: assembly of deltas and a completeness verdict naming what happened."""

from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.contract import Streaming, load_preset
from chatcontract.failures import classify_stream
from chatcontract.wire import (
    ErrorShape,
    SSEEvent,
    StreamAssembler,
    StreamParser,
    StreamResult,
    StreamVerdict,
    ViolationKind,
    parse_stream,
)

FIXTURES = Path(__file__).parent / "fixtures"
COMETAPI = load_preset("cometapi")
E11 = orjson.loads((FIXTURES / "cometapi_e11.json").read_bytes())
DONE = b"data: [DONE]\n\n"
PING = b": PING\n\n"


def event(doc) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def chunk(delta=None, finish_reason=None, **top) -> bytes:
    """A chunk shaped like E11 (CometAPI passes OpenAI's chunks through)."""
    doc = dict(E11)
    doc["choices"] = [
        {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}
    ]
    doc.update(top)
    return event(doc)


def usage_chunk(prompt=9, completion=2, total=11) -> bytes:
    return event(
        {
            "id": E11["id"],
            "object": "chat.completion.chunk",
            "created": E11["created"],
            "model": E11["model"],
            "system_fingerprint": None,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": total,
            },
        }
    )


FIRST = (FIXTURES / "cometapi_e11.json").read_bytes()
COMPLETE = [
    b"data: " + orjson.dumps(E11) + b"\n\n",  # E11 itself: role, empty content, refusal null
    chunk({"content": "Hel"}),
    PING,
    chunk({"content": "lo"}),
    chunk({}, "stop"),
    usage_chunk(),
    DONE,
]


def messages_of(result: StreamResult) -> list[str]:
    return [str(v) for v in result.violations]


# --------------------------------------------------------------------------- complete


def test_e11_first_chunk_then_deltas_usage_and_done_is_complete():
    result = parse_stream(COMPLETE, contract=COMETAPI)
    assert result.verdict is StreamVerdict.COMPLETE
    assert result.ok
    assert result.content == "Hello"
    assert result.finish_reason == "stop"
    assert result.usage is not None
    assert (
        result.usage.prompt_tokens,
        result.usage.completion_tokens,
        result.usage.total_tokens,
    ) == (9, 2, 11)
    assert result.model == "gpt-5-2025-08-07"
    assert result.id == "chatcmpl-CXbOXW75g3StGNZ0xvxo6y0LjcnCG"
    assert result.created == 1762124605
    assert result.chunk_count == 5
    assert result.ping_count == 1
    assert result.done_seen
    assert not result.missing_usage
    assert result.error is None
    assert result.violations == ()


def test_e11_pretty_printed_chunk_parses_as_a_single_data_line():
    result = parse_stream([b"data: " + FIRST.replace(b"\n", b"") + b"\n\n"], contract=COMETAPI)
    assert result.chunk_count == 1
    assert result.violations == ()


def test_the_whole_stream_as_a_completion():
    completion = parse_stream(COMPLETE).as_completion()
    assert (completion.content, completion.finish_reason, completion.model) == (
        "Hello",
        "stop",
        "gpt-5-2025-08-07",
    )
    assert completion.usage is not None


def test_system_fingerprint_keeps_the_last_non_null_value():
    result = parse_stream(
        [chunk({"content": "a"}, system_fingerprint="fp_1"), chunk({}, "stop"), usage_chunk(), DONE]
    )
    assert result.system_fingerprint == "fp_1"


def test_reasoning_and_refusal_deltas_accumulate_apart():
    stream = [
        chunk({"reasoning_content": "think "}),
        chunk({"reasoning_content": "more"}),
        chunk({"refusal": "I can't"}),
        chunk({}, "stop"),
        DONE,
    ]
    result = parse_stream(stream, expect_usage=False)
    assert (result.reasoning_content, result.refusal, result.content) == (
        "think more",
        "I can't",
        "",
    )
    assert result.ok


# --------------------------------------------------------------------------- tool calls


def test_tool_call_deltas_merge_by_index_with_arguments_concatenated():
    stream = [
        chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    },
                ],
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": "{}"},
                    },
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}),
        chunk({}, "tool_calls"),
        DONE,
    ]
    result = parse_stream(stream, expect_usage=False)
    assert result.ok
    first, second = result.tool_calls
    assert (first.index, first.id, first.name, first.arguments) == (
        0,
        "call_a",
        "get_weather",
        '{"city": "Paris"}',
    )
    assert (second.index, second.id, second.name, second.arguments) == (
        1,
        "call_b",
        "get_time",
        "{}",
    )
    assert result.as_completion().content is None


def test_tool_calls_without_index_use_their_position():
    stream = [
        chunk(
            {
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{"}}
                ]
            }
        ),
        chunk({"tool_calls": [{"function": {"arguments": "}"}}]}),
        chunk({}, "tool_calls"),
        DONE,
    ]
    (call,) = parse_stream(stream, expect_usage=False).tool_calls
    assert (call.index, call.id, call.arguments) == (0, "c1", "{}")


def test_a_repeated_tool_name_is_not_concatenated():
    stream = [
        chunk(
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{"}}]}
        ),
        chunk(
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "}"}}]}
        ),
        chunk({}, "tool_calls"),
        DONE,
    ]
    (call,) = parse_stream(stream, expect_usage=False).tool_calls
    assert (call.id, call.name, call.arguments) == ("c", "f", "{}")


# --------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("stream", "verdict"),
    [
        (COMPLETE, StreamVerdict.COMPLETE),
        (COMPLETE[:-1], StreamVerdict.NO_DONE),
        ([*COMPLETE[:4], DONE], StreamVerdict.TRUNCATED),
        ([DONE], StreamVerdict.TRUNCATED),
        (COMPLETE[:4], StreamVerdict.CUT),
        ([], StreamVerdict.CUT),
        ([PING, PING], StreamVerdict.CUT),
        ([*COMPLETE[:2], b"data: {not json}\n\n", *COMPLETE[2:]], StreamVerdict.MALFORMED_CHUNK),
        (
            [
                *COMPLETE[:2],
                b'data: {"error":{"message":"upstream timeout","type":"upstream_error"}}\n\n',
                DONE,
            ],
            StreamVerdict.INBAND_ERROR,
        ),
    ],
    ids=[
        "complete",
        "no-done",
        "done-without-finish",
        "only-done",
        "cut",
        "empty",
        "only-pings",
        "malformed",
        "inband-error",
    ],
)
def test_verdicts(stream, verdict):
    assert parse_stream(stream, contract=COMETAPI).verdict is verdict


def test_an_empty_finish_reason_is_not_a_finish():
    stream = [chunk({"content": "a"}, ""), chunk({"content": "b"}, ""), DONE]
    result = parse_stream(stream)
    assert (result.verdict, result.finish_reason) == (StreamVerdict.TRUNCATED, None)


def test_finish_reason_and_clean_close_is_complete_when_done_is_not_required():
    contract = replace(COMETAPI, streaming=Streaming(require_done=False))
    assert parse_stream(COMPLETE[:-1], contract=contract).verdict is StreamVerdict.COMPLETE


def test_stalled_names_the_callers_idle_limit():
    result = parse_stream(COMPLETE[:3], stalled=True)
    assert result.verdict is StreamVerdict.STALLED
    assert result.content == "Hel"


def test_stalled_after_finish_reason_is_still_stalled_without_done():
    assert parse_stream(COMPLETE[:5], stalled=True).verdict is StreamVerdict.STALLED


def test_stalled_after_done_is_complete():
    assert parse_stream(COMPLETE, stalled=True).verdict is StreamVerdict.COMPLETE


def test_an_in_band_error_wins_over_everything_else():
    stream = [b"data: {oops}\n\n", b'data: {"error":{"message":"x"}}\n\n', *COMPLETE]
    assert parse_stream(stream).verdict is StreamVerdict.INBAND_ERROR


# --------------------------------------------------------------------------- in-band errors


def test_in_band_error_is_parsed_with_the_error_body_parser():
    body = (
        b'data: {"error":{"message":"context too long (request id: 2026X)",'
        b'"type":"comet_api_error","code":"context_length_exceeded"}}\n\n'
    )
    result = parse_stream([*COMPLETE[:2], body, DONE], contract=COMETAPI)
    assert result.error is not None
    assert result.error.shape is ErrorShape.NEWAPI
    assert (result.error.code, result.error.message, result.error.request_id) == (
        "context_length_exceeded",
        "context too long",
        "2026X",
    )
    assert messages_of(result) == ["$[chunk 2]: expected a chunk, got an error event"]
    assert result.violations[0].kind is ViolationKind.ERROR_ENVELOPE
    assert result.content == "Hel"


@pytest.mark.parametrize(
    "payload",
    [b'event: error\ndata: {"message": "overloaded"}\n\n', b"event: error\ndata: overloaded\n\n"],
    ids=["json", "text"],
)
def test_an_error_event_type_is_an_in_band_error(payload):
    result = parse_stream([COMPLETE[1], payload])
    assert result.verdict is StreamVerdict.INBAND_ERROR
    assert result.error is not None


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"data: {not json}\n\n", "$[chunk 1]: expected JSON, got invalid JSON at character 1"),
        (b"data: [1, 2]\n\n", "$[chunk 1]: expected a chunk object, got array"),
        (b'data: {"choices": "x"}\n\n', "$[chunk 1].choices: expected array, got string"),
        (b'data: {"choices": ["x"]}\n\n', "$[chunk 1].choices[0]: expected object, got string"),
        (
            b'data: {"choices": [{"delta": "x"}]}\n\n',
            "$[chunk 1].choices[0].delta: expected object, got string",
        ),
        (
            b'data: {"choices": [{"delta": {"content": 42}}]}\n\n',
            "$[chunk 1].choices[0].delta.content: expected string, got 42",
        ),
        (
            b'data: {"choices": [{"index": "0", "delta": {}}]}\n\n',
            "$[chunk 1].choices[0].index: expected integer, got string",
        ),
        (
            b'data: {"choices": [{"delta": {}, "finish_reason": 1}]}\n\n',
            "$[chunk 1].choices[0].finish_reason: expected string, got 1",
        ),
        (
            b'data: {"choices": [{"delta": {"tool_calls": {}}}]}\n\n',
            "$[chunk 1].choices[0].delta.tool_calls: expected array, got empty object",
        ),
        (
            b'data: {"choices": [{"delta": {"tool_calls": '
            b'[{"index": 0, "function": {"arguments": 1}}]}}]}\n\n',
            "$[chunk 1].choices[0].delta.tool_calls[0].function.arguments: expected string, got 1",
        ),
        (
            b'data: {"choices": [], "usage": {"prompt_tokens": -1}}\n\n',
            "$[chunk 1].usage.prompt_tokens: expected non-negative integer, got -1",
        ),
        (b'data: {"id": 5, "choices": []}\n\n', "$[chunk 1].id: expected string, got 5"),
        (
            b'data: {"choices": [], "created": ' + b"9" * 10_000 + b"}\n\n",
            "$[chunk 1].created: expected a number within the range of a double (I-JSON, RFC "
            "7493), got a 10000-character number at character 27",
        ),
        (
            b'data: {"model": ["m"], "choices": []}\n\n',
            "$[chunk 1].model: expected string, got array",
        ),
    ],
    ids=[
        "not-json",
        "array",
        "choices-string",
        "choice-string",
        "delta-string",
        "content-number",
        "index-string",
        "finish-number",
        "tool-calls-object",
        "arguments-number",
        "usage-negative",
        "id-number",
        "created-beyond-a-double",
        "model-array",
    ],
)
def test_malformed_chunks_are_reported_at_their_path(payload, expected):
    result = parse_stream([COMPLETE[1], payload, *COMPLETE[3:]], contract=COMETAPI)
    assert result.verdict is StreamVerdict.MALFORMED_CHUNK
    assert messages_of(result) == [expected]


def test_a_body_that_is_not_sse_at_all_is_malformed():
    result = parse_stream([b'{"id": "chatcmpl-1", "choices": []}'])
    assert result.verdict is StreamVerdict.MALFORMED_CHUNK
    assert messages_of(result) == ["$: expected SSE data lines, got 1 other lines"]


def test_a_chunk_cut_at_the_end_of_the_body_is_a_cut_not_a_malformed_chunk():
    body = b"".join(COMPLETE[:4]) + b'data: {"choices":[{"delta":{"cont'
    result = parse_stream([body])
    assert result.verdict is StreamVerdict.CUT
    assert messages_of(result) == ["$[chunk 3]: expected a complete JSON chunk, got end of stream"]


def test_data_after_done_is_ignored_and_reported_once():
    result = parse_stream([*COMPLETE, chunk({"content": "late"}), chunk({"content": "later"})])
    assert result.verdict is StreamVerdict.COMPLETE
    assert result.content == "Hello"
    assert messages_of(result) == ["$[after DONE]: expected end of stream, got a data event"]


def test_an_unfinished_event_the_body_ends_after_done_is_not_data_after_done():
    # A fragment after [DONE] that the end of the body cut (never dispatched: no blank line)
    # is the connection's end, not data after the terminator; a whole event is.
    for parsed in (parse_stream([*COMPLETE, b"data: {"]), parse_stream([*COMPLETE, b"data: x"])):
        assert (parsed.verdict, parsed.violations) == (StreamVerdict.COMPLETE, ())
    result = parse_stream([*COMPLETE, b"data: x\n\n"])
    assert messages_of(result) == ["$[after DONE]: expected end of stream, got a data event"]


def test_blank_data_events_count_as_keep_alives():
    result = parse_stream([b"data: \n\n", b"data:\n\n", *COMPLETE])
    assert result.ping_count == 3
    assert result.verdict is StreamVerdict.COMPLETE


def test_violations_are_capped():
    result = parse_stream([b"data: {bad}\n\n"] * 500)
    assert len(result.violations) == 100
    assert result.chunk_count == 500


# --------------------------------------------------------------------------- usage


def test_missing_usage_chunk_is_flagged_when_contracted():
    result = parse_stream([*COMPLETE[:5], DONE], contract=COMETAPI)
    assert result.verdict is StreamVerdict.COMPLETE
    assert result.usage is None
    assert result.missing_usage
    assert messages_of(result) == ["$: expected a usage chunk, got none"]
    assert result.violations[0].kind is ViolationKind.MISSING_USAGE


def test_missing_usage_is_not_flagged_when_the_request_did_not_ask():
    result = parse_stream([*COMPLETE[:5], DONE], contract=COMETAPI, expect_usage=False)
    assert not result.missing_usage
    assert result.violations == ()


def test_missing_usage_is_not_flagged_for_an_answer_that_never_finished():
    assert not parse_stream(COMPLETE[:3], contract=COMETAPI).missing_usage


def test_usage_in_the_finish_chunk_is_read():
    result = parse_stream(
        [
            chunk({"content": "x"}),
            chunk(
                {}, "stop", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            ),
            DONE,
        ]
    )
    assert result.usage is not None
    assert result.usage.total_tokens == 2
    assert not result.missing_usage


# --------------------------------------------------------------------------- incremental


def test_first_token_is_the_moment_of_the_first_non_empty_delta():
    parser = StreamParser(contract=COMETAPI)
    parser.feed(COMPLETE[0], now=1.0)  # role + empty content: not a token
    assert parser.first_token_at is None
    parser.feed(COMPLETE[1], now=2.5)
    parser.feed(COMPLETE[3], now=3.0)
    assert parser.first_token_at == 2.5
    for piece in COMPLETE[4:]:
        parser.feed(piece, now=4.0)
    assert parser.close(now=5.0).first_token_at == 2.5


def test_a_tool_call_delta_is_a_first_token():
    parser = StreamParser()
    parser.feed(
        chunk(
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}]}
        ),
        now=7.0,
    )
    assert parser.first_token_at == 7.0


def test_a_reasoning_delta_is_a_first_token():
    parser = StreamParser()
    parser.feed(chunk({"reasoning_content": "hm"}), now=3.0)
    assert parser.first_token_at == 3.0


def test_decided_tells_early_that_the_stream_failed():
    parser = StreamParser()
    parser.feed(COMPLETE[1])
    assert parser.verdict is None
    parser.feed(b'data: {"error": {"message": "boom"}}\n\n')
    assert parser.verdict is StreamVerdict.INBAND_ERROR


def test_decided_after_done():
    parser = StreamParser()
    for piece in COMPLETE:
        parser.feed(piece)
    assert parser.verdict is StreamVerdict.COMPLETE
    assert parser.done_seen
    assert parser.chunk_count == 5
    assert parser.ping_count == 1


def test_snapshot_judges_without_closing():
    parser = StreamParser()
    parser.feed(COMPLETE[1])
    assert parser.snapshot().verdict is StreamVerdict.CUT
    assert parser.result is None
    for piece in COMPLETE[2:]:
        parser.feed(piece)
    assert parser.close().verdict is StreamVerdict.COMPLETE


def test_stall_closes_as_stalled():
    parser = StreamParser()
    parser.feed(COMPLETE[1])
    assert parser.stall().verdict is StreamVerdict.STALLED
    assert parser.result is not None


def test_close_is_idempotent():
    parser = StreamParser()
    parser.feed(b"".join(COMPLETE))
    assert parser.close() is parser.close()


def test_feeding_a_closed_parser_is_a_programming_error():
    parser = StreamParser()
    parser.close()
    with pytest.raises(RuntimeError, match="after close"):
        parser.feed(COMPLETE[0])


def test_the_assembler_takes_decoded_events():
    assembler = StreamAssembler(contract=COMETAPI, expect_usage=False)
    assembler.push(
        SSEEvent(data=orjson.dumps(orjson.loads(chunk({"content": "hi"})[6:])).decode()), now=1.0
    )
    assembler.push_data('{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}')
    assembler.push(SSEEvent(data="[DONE]"))
    result = assembler.result()
    assert (result.verdict, result.content, result.finish_reason) == (
        StreamVerdict.COMPLETE,
        "hi",
        "length",
    )


def test_only_choice_zero_is_assembled():
    doc = {
        "choices": [
            {"index": 1, "delta": {"content": "other"}, "finish_reason": "length"},
            {"index": 0, "delta": {"content": "mine"}, "finish_reason": None},
        ]
    }
    result = parse_stream([event(doc), chunk({}, "stop"), DONE], expect_usage=False)
    assert (result.content, result.finish_reason) == ("mine", "stop")


# --------------------------------------------------------------------------- properties


def pieces_of(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(set(cuts))
    out, start = [], 0
    for point in points:
        out.append(body[start:point])
        start = point
    out.append(body[start:])
    return out


TOOL_STREAM = [
    chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "c",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"é'},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '": 1}'}}]}),
    chunk({}, "tool_calls"),
    usage_chunk(),
    DONE,
]
VARIANTS = {
    "complete": COMPLETE,
    "unicode": [
        chunk({"content": "héllo € 😀"}),
        chunk({"content": "\n"}),
        chunk({}, "stop"),
        usage_chunk(),
        DONE,
    ],
    "crlf": [piece.replace(b"\n", b"\r\n") for piece in COMPLETE],
    "cr": [piece.replace(b"\n", b"\r") for piece in COMPLETE],
    "tools": TOOL_STREAM,
    "no-done": COMPLETE[:-1],
    "truncated": [*COMPLETE[:4], DONE],
    "cut-mid-chunk": [*COMPLETE[:4], COMPLETE[4][:20]],
    "inband": [*COMPLETE[:2], b'data: {"error": {"message": "x"}}\n\n', DONE],
    "malformed": [*COMPLETE[:2], b"data: {x\n\n", *COMPLETE[2:]],
}


def summary(result: StreamResult):
    return (
        result.verdict,
        result.content,
        result.usage,
        result.tool_calls,
        result.finish_reason,
        result.violations,
        result.ping_count,
        result.chunk_count,
    )


@settings(max_examples=examples(300))
@given(st.sampled_from(sorted(VARIANTS)), st.data())
def test_any_split_gives_the_same_result(name, data):
    body = b"".join(VARIANTS[name])
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=30))
    assert summary(parse_stream(pieces_of(body, cuts))) == summary(parse_stream([body]))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_byte_by_byte_gives_the_same_result(name):
    body = b"".join(VARIANTS[name])
    assert summary(parse_stream([body[i : i + 1] for i in range(len(body))])) == summary(
        parse_stream([body])
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "choices",
                    "delta",
                    "content",
                    "index",
                    "tool_calls",
                    "function",
                    "arguments",
                    "usage",
                    "error",
                    "finish_reason",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)
random_events = st.one_of(
    json_values.map(lambda value: b"data: " + orjson.dumps(value) + b"\n\n"),
    st.sampled_from([DONE, PING, b"event: error\n", b"data: {\n\n", b"\r\n", b"data: \xff\n\n"]),
    st.binary(max_size=20),
)


@settings(max_examples=examples(400))
@given(st.lists(random_events, max_size=12), st.booleans())
def test_random_chunk_lists_never_raise(pieces, stalled):
    result = parse_stream(pieces, contract=COMETAPI, stalled=stalled)
    assert isinstance(result.verdict, StreamVerdict)
    assert result.ok == (result.verdict is StreamVerdict.COMPLETE)


# --------------------------------------------------------------------------- dropped connections


@pytest.mark.parametrize(
    ("stream", "require_done", "verdict"),
    [
        (COMPLETE[:3], True, StreamVerdict.DROPPED),
        ([], True, StreamVerdict.DROPPED),
        (COMPLETE[:5], True, StreamVerdict.DROPPED),
        (COMPLETE[:5], False, StreamVerdict.COMPLETE),
        (COMPLETE, True, StreamVerdict.COMPLETE),
        ([*COMPLETE[:4], b"data: [DONE]\n\n"], True, StreamVerdict.TRUNCATED),
    ],
    ids=[
        "mid-answer",
        "before-any-event",
        "after-finish-before-done",
        "after-finish-done-not-required",
        "after-done",
        "after-done-without-finish",
    ],
)
def test_a_dropped_connection_is_named_unless_the_stream_had_ended(stream, require_done, verdict):
    contract = replace(COMETAPI, streaming=Streaming(require_done=require_done))
    assert parse_stream(stream, contract=contract, dropped=True).verdict is verdict


def test_a_clean_close_mid_answer_is_cut_not_dropped():
    assert parse_stream(COMPLETE[:3]).verdict is StreamVerdict.CUT
    assert parse_stream(COMPLETE[:5], contract=COMETAPI).verdict is StreamVerdict.NO_DONE


def test_a_stall_is_named_before_a_drop():
    assert parse_stream(COMPLETE[:3], stalled=True, dropped=True).verdict is StreamVerdict.STALLED


def test_a_dropped_stream_keeps_what_arrived():
    parser = StreamParser(contract=COMETAPI)
    for piece in COMPLETE[:4]:
        parser.feed(piece)
    result = parser.close(dropped=True)
    assert (result.verdict, result.content) == (StreamVerdict.DROPPED, "Hello")
    assert parser.verdict is StreamVerdict.DROPPED


def _closed(pieces, **kwargs):
    parser = StreamParser(contract=COMETAPI, **kwargs)
    for piece in pieces:
        parser.feed(piece)
    return parser.close(closed=True)


@pytest.mark.parametrize(
    ("stream", "verdict"),
    [
        (COMPLETE[:3], StreamVerdict.CLOSED),
        ([], StreamVerdict.CLOSED),
        (COMPLETE[:5], StreamVerdict.CLOSED),
        (COMPLETE, StreamVerdict.COMPLETE),
        ([*COMPLETE[:4], b"data: [DONE]\n\n"], StreamVerdict.TRUNCATED),
        ([*COMPLETE[:2], b'data: {"error": {"message": "boom"}}\n\n'], StreamVerdict.INBAND_ERROR),
    ],
    ids=[
        "mid-answer",
        "before-any-event",
        "after-finish",
        "after-done",
        "done-without-finish",
        "after-inband-error",
    ],
)
def test_a_stream_the_caller_closed_is_closed_unless_its_verdict_was_certain(stream, verdict):
    assert _closed(stream).verdict is verdict


def test_a_usage_chunk_is_not_missing_when_the_caller_closed_before_it():
    result = _closed(COMPLETE[:5], expect_usage=True)
    assert (result.verdict, result.missing_usage, result.finish_reason) == (
        StreamVerdict.CLOSED, False, "stop"
    )  # fmt: skip
    assert classify_stream(result, contract=COMETAPI) is None


# --------------------------------------------------------------------------- hostile SSE fields


def test_an_absurd_retry_field_is_a_violation_that_does_not_change_the_verdict():
    stream = [b"retry: " + b"9" * 5000 + b"\n\n", *COMPLETE]
    result = parse_stream(stream, contract=COMETAPI)
    assert result.verdict is StreamVerdict.COMPLETE
    [violation] = result.violations
    assert (violation.kind, violation.path) == (ViolationKind.INVALID_FIELD, "$[retry]")
    assert violation.expected == "a retry delay of at most 86400000 ms"
    assert violation.got == "1 absurd value(s), ignored"


def test_a_sane_retry_field_is_no_violation():
    result = parse_stream([b"retry: 3000\n\n", *COMPLETE], contract=COMETAPI)
    assert result.ok and result.violations == ()


def test_the_snapshot_reports_an_absurd_retry_field_too():
    parser = StreamParser(contract=COMETAPI)
    parser.feed(b"retry: 99999999999\n\n")
    assert [v.kind for v in parser.snapshot().violations] == [ViolationKind.INVALID_FIELD]


# --------------------------------------------------------------------------- text marks


def test_text_since_a_mark_is_what_the_events_after_it_added():
    assembler = StreamAssembler()
    assembler.push_data('{"choices":[{"index":0,"delta":{"content":"a"}}]}')
    mark = assembler.text_mark()
    assert mark == (1, 0)
    assembler.push_data('{"choices":[{"index":0,"delta":{"content":"b","reasoning_content":"r"}}]}')
    assembler.push_data('{"choices":[{"index":1,"delta":{"content":"other choice"}}]}')
    assembler.push_data('{"choices":[{"index":0,"delta":{"content":""}}]}')
    assert assembler.text_since(mark) == ("b", "r")
    assert assembler.text_since(assembler.text_mark()) == ("", "")
    assert assembler.text_since((0, 0)) == ("ab", "r")
