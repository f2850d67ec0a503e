"""``bench_replay.py --layers``: the pass-through layers it measures do what they say, and the
report is the median of the per-round differences with its interval."""

from __future__ import annotations

import json

import httpx2
import pytest

EVENTS = [
    {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
    *(
        {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": word}}]}
        for word in ("one", " two", " three")
    ),
    {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {
        "id": "c1",
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
    },
]


def _pieces() -> list[bytes]:
    """A chunked SSE answer, one HTTP chunk (and one read) per event, as a socket gives it."""
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    events = [b"data: " + json.dumps(event).encode() + b"\n\n" for event in EVENTS]
    events.append(b"data: [DONE]\n\n")
    return [head, *(b"%x\r\n%b\r\n" % (len(event), event) for event in events), b"0\r\n\r\n"]


def _body(pieces: list[bytes]) -> bytes:
    return b"".join(piece.split(b"\r\n", 1)[1][:-2] for piece in pieces[1:-1])


@pytest.fixture(name="replay")
def replay_fixture(load_benchmark):
    return load_benchmark("bench_replay")


def _read(replay, *, parse: bool) -> tuple[bytes, object]:
    pieces = _pieces()
    transport = replay.PassThrough(replay._transport(pieces, timed=False), parse=parse)
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions", content=b"{}")
    response = transport.handle_request(request)
    stream = response.stream
    try:
        data = b"".join(stream)
    finally:
        stream.close()
        transport.close()
    return data, stream


def test_the_wrap_layer_passes_every_byte_through_and_parses_nothing(replay):
    data, stream = _read(replay, parse=False)
    assert data == _body(_pieces())
    assert stream.parser is None


def test_the_parser_layer_feeds_every_read_to_a_parser_that_ends_with_the_stream(replay):
    data, stream = _read(replay, parse=True)
    assert data == _body(_pieces())  # what the caller reads is untouched
    result = stream.parser.result
    assert result is not None  # closed with the response
    assert str(result.verdict) == "complete"
    assert result.content == "one two three"
    assert result.finish_reason == "stop"
    assert result.violations == ()
    assert result.chunk_count == len(EVENTS)
    assert result.usage is not None
    assert result.usage.total_tokens == 6


def test_layers_are_reported_as_the_median_difference_with_its_interval(replay):
    per = {
        "plain": [100.0, 100.0, 100.0, 100.0, 100.0],
        "wrap": [100.0, 101.0, 102.0, 99.0, 100.0],
        "parser": [110.0, 120.0, 130.0, 140.0, 250.0],
        "bare": [300.0, 300.0, 300.0, 300.0, 300.0],
    }
    chunks = dict.fromkeys(per, 10.0)
    lines = replay.report_layers(per, chunks).splitlines()
    assert [line.split(":")[0] for line in lines] == ["wrap", "parser", "bare"]
    # the median, not the mean (+50.0): one slow round moves the interval, not the figure
    assert lines[1] == (
        "parser: +30.0 µs per call (95% CI +10.0 .. +150.0), "
        "+3.00 µs per chunk (95% CI +1.00 .. +15.00)"
    )
    assert lines[2] == (
        "bare: +200.0 µs per call (95% CI +200.0 .. +200.0), "
        "+20.00 µs per chunk (95% CI +20.00 .. +20.00)"
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--layers"], "--layers measures a stream's chunks: add --stream"),
        (["--stream", "--callgrind", "nope", "3"], "KIND one of plain, bare, prom, full, wrap"),
        (["--stream", "--callgrind", "parser", "many"], "N 0 to 100000"),
        (["--callgrind", "parser", "3"], "--callgrind parser measures a stream's chunks"),
    ],
)
def test_bad_options_say_what_to_write_and_exit_2_before_recording(replay, capsys, argv, says):
    with pytest.raises(SystemExit) as exited:
        replay.main(argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
