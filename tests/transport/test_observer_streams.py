"""The observer's stream verdicts against a real socket: a dropped connection is a network
failure, a clean close without ``finish_reason`` a contract truncation; usage is owed only when
the request asked for it."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import httpx2
import openai
import pytest

from chatcontract.contract import load_preset
from chatcontract.exchange import RequestFacts
from chatcontract.instrumentation import instrument
from chatcontract.transport import InstrumentedTransport
from chatcontract.transport.instrumented import CallDeadlineError
from chatcontract.transport.observer import CallObserver, request_facts
from chatcontract.wire import ViolationKind

COMET = load_preset("cometapi")
MODEL = "gpt-4.1-nano"
MESSAGES = [{"role": "user", "content": "hi"}]
WORDS = ["Hel", "lo", " there"]
TIMEOUT_S = 5.0


def _event(delta: dict[str, object], finish: str | None = None, **top: object) -> bytes:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **top,
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


FIRST_EVENTS = [_event({"role": "assistant", "content": ""})] + [
    _event({"content": word}) for word in WORDS
]
FINISH = _event({}, "stop")
USAGE = (
    b"data: "
    + json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": MODEL,
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
        }
    ).encode()
    + b"\n\n"
)
DONE = b"data: [DONE]\n\n"


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        piece = conn.recv(65536)
        if not piece:
            return
        body += piece


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _serve(conn: socket.socket, ending: str, events: list[bytes], read: threading.Event) -> None:
    _read_request(conn)
    chunked = ending != "eof"
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    head += b"transfer-encoding: chunked\r\n" if chunked else b"connection: close\r\n"
    conn.sendall(head + b"\r\n")
    for event in events:
        conn.sendall(_chunk(event) if chunked else event)
    if ending == "reset":  # RST: the peer aborts the connection
        # Once the client has read the head and some events (an RST discards unread data).
        read.wait(TIMEOUT_S)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif ending == "close-mid-chunk":  # a chunk announced, half of it sent, then FIN
        conn.sendall(b"40\r\ndata: {")
    elif ending == "clean":  # the chunked body ends properly
        conn.sendall(b"0\r\n\r\n")
    conn.close()


@contextmanager
def _server(ending: str, events: list[bytes]) -> Iterator[tuple[str, threading.Event]]:
    """A one-off HTTP server on 127.0.0.1 (free port) that answers every connection with
    ``events`` as an SSE stream, then ends it the way ``ending`` says. Set the event it
    yields once the client has read from the body."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # to notice ``stop`` promptly
    port = listener.getsockname()[1]
    stop = threading.Event()
    read = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(TIMEOUT_S)
                with suppress(OSError):
                    _serve(conn, ending, events, read)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1", read
    finally:
        stop.set()
        read.set()
        thread.join(TIMEOUT_S)
        listener.close()


def _observe(
    served: tuple[str, threading.Event], *, include_usage: bool = True
) -> tuple[list[bytes], object]:
    base_url, read = served
    exchanges: list = []
    transport = InstrumentedTransport(contract=COMET, sinks=[exchanges.append])
    body: dict[str, object] = {"model": MODEL, "messages": MESSAGES, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    received: list[bytes] = []
    with httpx2.Client(transport=transport, timeout=TIMEOUT_S) as client:
        try:
            with client.stream("POST", base_url + "/chat/completions", json=body) as response:
                for piece in response.iter_bytes():
                    received.append(piece)
                    read.set()
        except httpx2.TransportError:
            pass
    [exchange] = exchanges
    return received, exchange


# -- dropped connection vs clean close --------------------------------------------------------


@pytest.mark.parametrize("ending", ["reset", "close-mid-chunk"], ids=["rst", "fin-inside-chunk"])
def test_a_connection_dropped_mid_stream_is_a_network_failure(ending):
    with _server(ending, FIRST_EVENTS) as served:
        received, exchange = _observe(served)
    assert received  # the drop came after the head and some of the body
    failure = exchange.failure
    assert (failure.kind, failure.category, failure.code) == (
        "transport",
        "network",
        "stream_dropped",
    )
    assert exchange.response.stream_verdict == "dropped"


@pytest.mark.parametrize("ending", ["clean", "eof"], ids=["chunked-end", "close-delimited"])
def test_a_clean_close_without_finish_reason_is_a_contract_truncation(ending):
    with _server(ending, FIRST_EVENTS) as served:
        received, exchange = _observe(served)
    assert b"".join(received) == b"".join(FIRST_EVENTS)  # the body did end cleanly
    failure = exchange.failure
    assert (failure.kind, failure.category, failure.code) == ("parser", "contract", "stream_cut")
    assert exchange.response.stream_verdict == "cut"


def test_a_drop_after_the_whole_answer_and_done_is_still_a_success():
    with _server("close-mid-chunk", [*FIRST_EVENTS, FINISH, USAGE, DONE]) as served:
        _, exchange = _observe(served)
    # The answer was complete before the connection failed: nothing was lost.
    assert exchange.ok, exchange.failure
    assert exchange.response.stream_verdict == "complete"


def test_a_complete_stream_over_a_real_socket_is_a_success():
    with _server("clean", [*FIRST_EVENTS, FINISH, USAGE, DONE]) as served:
        _, exchange = _observe(served)
    assert exchange.ok, exchange.failure
    assert exchange.response.usage.total_tokens == 6


# -- on_error, unit by unit -------------------------------------------------------------------


def _observer(include_usage: bool = True) -> CallObserver:
    request = RequestFacts(
        method="POST", url="http://x/v1", stream=True, include_usage=include_usage
    )
    observer = CallObserver(request=request, contract=COMET, sinks=())
    observer.on_response(200, {"content-type": "text/event-stream"})
    for event in FIRST_EVENTS:
        observer.on_chunk(event)
    return observer


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (httpx2.RemoteProtocolError("peer closed connection"), "stream_dropped"),
        (httpx2.ReadError("connection reset by peer"), "stream_dropped"),
        (ConnectionResetError(104, "Connection reset by peer"), "stream_dropped"),
        (httpx2.ReadTimeout("idle"), "stream_stalled"),
        (TimeoutError(), "stream_stalled"),
        (CallDeadlineError("the call's deadline passed"), "deadline"),
    ],
    ids=["protocol", "read-error", "os-reset", "read-timeout", "timeout", "call-deadline"],
)
def test_an_error_mid_stream_is_named_by_what_failed(error, code):
    exchange = _observer().on_error(error)
    assert exchange.failure.code == code


def test_an_error_before_the_response_is_classified_as_the_exception():
    request = RequestFacts(method="POST", url="http://x/v1", stream=True)
    observer = CallObserver(request=request, contract=COMET, sinks=())
    exchange = observer.on_error(httpx2.ConnectError("connection refused"))
    assert (exchange.failure.kind, exchange.failure.code) == ("transport", "connect_refused")


# -- usage judged from the request ------------------------------------------------------------


@pytest.mark.parametrize(
    ("include_usage", "missing"), [(True, True), (False, False)], ids=["asked", "not-asked"]
)
def test_a_stream_without_usage_is_missing_usage_only_when_the_request_asked(
    include_usage, missing
):
    observer = _observer(include_usage)
    observer.on_chunk(FINISH + DONE)
    exchange = observer.finish()
    assert (exchange.failure is not None) is missing
    if missing:
        assert (exchange.failure.category, exchange.failure.code) == ("usage", "missing_usage")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (None, False),
        ({"include_usage": True}, True),
        ({"include_usage": False}, False),
        ({"include_usage": "yes"}, False),
        ("include_usage", False),
    ],
    ids=["absent", "true", "false", "not-a-bool", "not-an-object"],
)
def test_request_facts_record_whether_the_request_asked_for_usage(options, expected):
    body: dict[str, object] = {"model": MODEL, "messages": MESSAGES, "stream": True}
    if options is not None:
        body["stream_options"] = options
    facts = request_facts(
        "POST", "http://x/v1/chat/completions", json.dumps(body).encode(), {}, None
    )
    assert facts.stream and facts.include_usage is expected


def _sse_handler(body: bytes):
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, stream=httpx2.ByteStream(body)
        )

    return handler


def _sdk_stream(http: httpx2.Client, **kwargs: object) -> str:
    sdk = openai.OpenAI(base_url="http://sim.test/v1", api_key="sk-test", http_client=http)
    try:
        stream = sdk.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, **kwargs)
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    finally:
        sdk.close()


def test_an_sdk_stream_without_stream_options_is_neither_missing_usage_nor_schema_invalid():
    body = b"".join([*FIRST_EVENTS, FINISH, DONE])  # no usage chunk: none was asked for
    exchanges: list = []
    http = instrument(
        transport=httpx2.MockTransport(_sse_handler(body)),
        sinks=[exchanges.append],
        event_log=False,
    )
    assert _sdk_stream(http) == "".join(WORDS)
    [exchange] = exchanges
    assert not exchange.request.include_usage
    assert exchange.ok, exchange.failure
    assert exchange.response.stream_verdict == "complete"


def test_an_sdk_stream_that_asked_for_usage_and_got_none_is_missing_usage():
    body = b"".join([*FIRST_EVENTS, FINISH, DONE])
    exchanges: list = []
    http = instrument(
        transport=httpx2.MockTransport(_sse_handler(body)),
        sinks=[exchanges.append],
        event_log=False,
    )
    assert _sdk_stream(http, stream_options={"include_usage": True}) == "".join(WORDS)
    [exchange] = exchanges
    assert exchange.failure.code == "missing_usage"


# -- a hostile retry: field never changes what the SDK returns ---------------------------------


def test_an_absurd_retry_field_is_a_violation_and_the_sdk_result_is_unchanged():
    clean = b"".join([*FIRST_EVENTS, FINISH, DONE])
    hostile = b"retry: " + b"9" * 5000 + b"\n\n" + clean
    plain = _sdk_stream(httpx2.Client(transport=httpx2.MockTransport(_sse_handler(hostile))))
    exchanges: list = []
    http = instrument(
        transport=httpx2.MockTransport(_sse_handler(hostile)),
        sinks=[exchanges.append],
        event_log=False,
    )
    assert _sdk_stream(http) == plain == "".join(WORDS)
    [exchange] = exchanges
    assert exchange.ok, exchange.failure  # a stray SSE field does not fail the answer


def test_the_observer_reports_an_absurd_retry_field():
    observer = _observer(include_usage=False)
    observer.on_chunk(b"retry: " + b"1" * 4400 + b"\n\n" + FINISH + DONE)
    exchange = observer.finish()
    assert exchange.ok
    stream = observer._stream
    assert stream is not None and stream.result is not None
    [violation] = [v for v in stream.result.violations if v.kind is ViolationKind.INVALID_FIELD]
    assert violation.path == "$[retry]"
