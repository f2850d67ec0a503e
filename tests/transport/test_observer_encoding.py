"""A compressed answer is judged on its decoded bytes.

The openai SDK (through httpx2) asks for ``gzip, deflate`` and reads the answer decoded; the
observer sees the bytes as they came off the wire. These tests serve real compressed answers
from hand-written servers on 127.0.0.1 (``raw_servers.coded_answer``) to the SDK through
``instrument()`` (``ChatClient`` and the gateway: ``tests/client/test_client_compressed.py``,
``tests/gateway/test_gateway_compressed.py``), and check the Exchange each call leaves: the answer's verdict, never a false parser
failure; a corrupt body, an undecodable coding and a decompression bomb each named for what
they are, with bounded work.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from chatcontract.exchange import Exchange
from chatcontract.instrumentation import ainstrument, instrument
from chatcontract.transport import _coding
from chatcontract.transport.observer import (
    MAX_BODY_BYTES,
    CallObserver,
    request_facts,
)
from raw_servers import (
    COMPLETION,
    STREAM_EVENTS,
    STREAM_TEXT,
    coded_answer,
    gzip_events,
    gzip_zeros,
    raw_server,
)

MODEL = "gpt-4.1-nano"
MESSAGES = [{"role": "user", "content": "Reply with exactly: pong"}]
KEY = "sk-raw-server-key-0001"


EVENTS = STREAM_EVENTS
TEXT = STREAM_TEXT


def _once(data: bytes, *, pieces: int = 1) -> callable:  # type: ignore[valid-type]
    """``data`` as ``pieces`` roughly equal HTTP chunks."""
    size = max(1, -(-len(data) // pieces))
    return lambda: iter([data[i : i + size] for i in range(0, len(data), size)])


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


CODED = pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(COMPLETION)),
        ("deflate", zlib.compress(COMPLETION)),
        ("deflate", _raw_deflate(COMPLETION)),
        ("gzip, identity", gzip.compress(COMPLETION)),
        ("gzip, gzip", gzip.compress(gzip.compress(COMPLETION))),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw", "gzip-identity", "gzip-twice"],
)


@contextlib.contextmanager
def _sdk(server, exchanges: list[Exchange]) -> Iterator[openai.OpenAI]:
    http = instrument(sinks=[exchanges.append], event_log=False, shape_sample_rate=1.0)
    sdk = openai.OpenAI(base_url=server.base_url, api_key=KEY, http_client=http, max_retries=0)
    try:
        yield sdk
    finally:
        sdk.close()


@CODED
def test_the_sdk_gets_a_compressed_completion_and_the_exchange_is_a_success(encoding, body):
    exchanges: list[Exchange] = []
    with (
        raw_server(coded_answer(_once(body, pieces=3), encoding=encoding)) as server,
        _sdk(server, exchanges) as sdk,
    ):
        completion = sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.choices[0].message.content == "pong"
    [exchange] = exchanges
    assert exchange.failure is None, exchange.failure
    response = exchange.response
    assert response is not None
    assert (response.model, response.finish_reason) == (MODEL, "stop")
    assert response.usage is not None and response.usage.total_tokens == 13
    assert response.body_bytes == len(COMPLETION)  # the decoded body, as parsed
    assert response.content_encoding == encoding
    assert response.shape_fingerprint is not None  # the shapes of the decoded JSON


@pytest.mark.parametrize("stream", [False, True], ids=["completion", "stream"])
def test_codings_on_separate_lines_are_removed_all_as_httpx2_does(stream):
    # RFC 9110: repeated field lines are one list. Decoded by its last line alone, a body
    # deflated then gzipped was judged corrupt while the SDK read it fine.
    exchanges: list[Exchange] = []
    inner = zlib.compress(b"".join(EVENTS) if stream else COMPLETION)
    handler = coded_answer(
        _once(gzip.compress(inner), pieces=3),
        encoding=("deflate", "gzip"),
        content_type="text/event-stream" if stream else "application/json",
    )
    with raw_server(handler) as server, _sdk(server, exchanges) as sdk:
        answer = sdk.chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)
        text = (
            "".join(chunk.choices[0].delta.content or "" for chunk in answer if chunk.choices)
            if stream
            else answer.choices[0].message.content
        )
    assert text == (TEXT if stream else "pong")
    [exchange] = exchanges
    assert exchange.failure is None, exchange.failure
    assert exchange.response is not None
    assert exchange.response.content_encoding == "deflate, gzip"


def test_a_gzip_stream_flushed_per_event_is_complete_with_its_content():
    exchanges: list[Exchange] = []
    handler = coded_answer(lambda: gzip_events(EVENTS), content_type="text/event-stream")
    with raw_server(handler) as server, _sdk(server, exchanges) as sdk:
        chunks = sdk.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    [exchange] = exchanges
    assert exchange.failure is None, exchange.failure
    response = exchange.response
    assert response is not None
    assert response.stream_verdict == "complete"
    assert response.content_chars == len(TEXT)
    assert response.chunk_count == len(EVENTS) - 1  # [DONE] is no chunk
    assert response.usage is not None and response.usage.total_tokens == 52
    assert response.body_bytes == sum(map(len, EVENTS))  # decoded bytes fed to the parser
    assert exchange.timings.ttft_ms is not None


def test_the_async_sdk_gets_compressed_answers_judged_too():
    exchanges: list[Exchange] = []

    def pieces() -> Iterator[bytes]:
        yield from gzip_events(EVENTS)

    async def run(base_url: str) -> tuple[str, str]:
        http = ainstrument(sinks=[exchanges.append], event_log=False)
        sdk = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, http_client=http, max_retries=0)
        chunks = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        await sdk.close()
        return text, base_url

    with raw_server(coded_answer(pieces, content_type="text/event-stream")) as server:
        text, _ = asyncio.run(run(server.base_url))
    assert text == TEXT
    [exchange] = exchanges
    assert exchange.failure is None, exchange.failure
    assert exchange.response is not None and exchange.response.stream_verdict == "complete"

    exchanges.clear()

    async def complete(base_url: str) -> str | None:
        http = ainstrument(sinks=[exchanges.append], event_log=False)
        sdk = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, http_client=http, max_retries=0)
        completion = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
        await sdk.close()
        return completion.choices[0].message.content

    with raw_server(coded_answer(_once(gzip.compress(COMPLETION), pieces=2))) as server:
        assert asyncio.run(complete(server.base_url)) == "pong"
    [exchange] = exchanges
    assert exchange.failure is None, exchange.failure


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_corrupt_gzip_is_a_named_parser_failure_whatever_the_sdk_does(stream):
    exchanges: list[Exchange] = []
    good = gzip.compress(b"".join(EVENTS) if stream else COMPLETION)
    corrupt = good[:40] + bytes(b ^ 0x55 for b in good[40:80]) + good[80:]
    kind = "text/event-stream" if stream else "application/json"
    with (
        raw_server(coded_answer(_once(corrupt, pieces=3), content_type=kind)) as server,
        _sdk(server, exchanges) as sdk,
        contextlib.suppress(Exception),
    ):
        answer = sdk.chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)
        if stream:
            list(answer)  # type: ignore[arg-type]
    [exchange] = exchanges
    failure = exchange.failure
    assert failure is not None
    assert (failure.kind, failure.category, failure.code) == (
        "parser",
        "contract",
        "invalid_encoding",
    )
    assert "gzip" in failure.message


def _exchange_of(handler: Any) -> Exchange:
    """The one Exchange of an SDK call to a server run by ``handler`` (whatever the SDK raised)."""
    exchanges: list[Exchange] = []
    with (
        raw_server(handler) as server,
        _sdk(server, exchanges) as sdk,
        contextlib.suppress(Exception),
    ):
        sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
    [exchange] = exchanges
    return exchange


def test_a_body_that_is_not_gzip_at_all_is_invalid_encoding_not_invalid_json():
    handler = coded_answer(_once(COMPLETION))  # says gzip, is plain JSON
    exchange = _exchange_of(handler)
    assert exchange.failure is not None and exchange.failure.code == "invalid_encoding"


@pytest.mark.parametrize("encoding", ["snappy", "gzip, snappy", "compress"])
def test_an_undecodable_coding_is_not_judged_and_not_a_parser_failure(encoding):
    exchange = _exchange_of(coded_answer(_once(b"\x00opaque\xff" * 10), encoding=encoding))
    failure = exchange.failure
    assert failure is not None
    assert failure.kind != "parser"
    assert (failure.kind, failure.category, failure.code) == (
        "http",
        "contract",
        "unsupported_encoding",
    )
    assert "not judged" in failure.message and encoding in failure.message
    assert exchange.response is not None
    assert exchange.response.body_bytes == 80  # as received: nothing was decoded
    assert exchange.response.content_encoding == encoding


def test_an_error_status_in_an_undecodable_coding_is_judged_by_its_status():
    handler = coded_answer(_once(b"\x00opaque"), encoding="snappy", status=503)
    exchange = _exchange_of(handler)
    assert exchange.failure is not None
    assert (exchange.failure.kind, exchange.failure.status) == ("http", 503)
    assert exchange.failure.category == "upstream"


def test_a_gzipped_error_body_is_classified_from_its_decoded_envelope():
    exchanges: list[Exchange] = []
    error = b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}'
    handler = coded_answer(_once(gzip.compress(error)), status=401)
    with (
        raw_server(handler) as server,
        _sdk(server, exchanges) as sdk,
        pytest.raises(openai.AuthenticationError),
    ):
        sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
    [exchange] = exchanges
    assert exchange.failure is not None
    assert (exchange.failure.kind, exchange.failure.category) == ("api_error", "auth")


GIGABYTE = 1 << 30


def test_a_gzip_bomb_is_body_too_large_and_decoded_no_further_than_the_limit():
    exchanges: list[Exchange] = []
    handler = coded_answer(lambda: gzip_zeros(GIGABYTE))
    with raw_server(handler) as server:
        # httpx2 itself, not the SDK: the SDK would join the whole gigabyte in memory.
        http = instrument(sinks=[exchanges.append], event_log=False)
        with http:
            body = {"model": MODEL, "messages": MESSAGES}
            with http.stream("POST", server.url, json=body, headers={"authorization": KEY}) as r:
                wire = sum(len(piece) for piece in r.iter_raw())
    [exchange] = exchanges
    assert exchange.failure is not None
    assert (exchange.failure.kind, exchange.failure.code) == ("parser", "body_too_large")
    assert exchange.response is not None
    # Decoding stopped one byte past the limit: the rest of the gigabyte was never inflated.
    assert exchange.response.body_bytes == MAX_BODY_BYTES + 1
    assert wire < 2 * 1024 * 1024  # the bomb itself is about a megabyte on the wire


def _observer(sinks: list[Exchange]) -> CallObserver:
    facts = request_facts("POST", "http://up/v1/chat/completions", b"{}", {}, None)
    return CallObserver(request=facts, contract=None, sinks=(sinks.append,))


def test_the_observer_keeps_no_more_of_a_bomb_than_the_limit():
    exchanges: list[Exchange] = []
    observer = _observer(exchanges)
    observer.on_response(200, {"content-type": "application/json", "content-encoding": "gzip"})
    sink = observer.chunk_sink
    reads = 0
    for piece in gzip_zeros(64 * MAX_BODY_BYTES):  # 512 MiB of zeros
        sink(piece)
        reads += 1
        assert len(observer._body) <= MAX_BODY_BYTES  # kept: bounded at every read
    exchange = observer.finish()
    assert reads > 64
    assert exchange.failure is not None and exchange.failure.code == "body_too_large"
    assert exchange.response is not None
    assert exchange.response.body_bytes == MAX_BODY_BYTES + 1


def test_a_stream_bomb_is_cut_at_the_stream_cap(monkeypatch):
    monkeypatch.setattr("chatcontract.transport.observer.MAX_DECODED_STREAM_BYTES", 1 << 20)
    exchanges: list[Exchange] = []
    observer = _observer(exchanges)
    observer.on_response(200, {"content-type": "text/event-stream", "content-encoding": "gzip"})
    sink = observer.chunk_sink
    ping = b": ping\n\n" * 8192
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    for _ in range(256):  # 16 MiB of keep-alives, 16 times the cap
        sink(packer.compress(ping) + packer.flush(zlib.Z_SYNC_FLUSH))
    sink(packer.flush())
    exchange = observer.finish()
    assert exchange.failure is not None
    assert (exchange.failure.kind, exchange.failure.code) == ("parser", "body_too_large")
    assert exchange.response is not None
    assert exchange.response.body_bytes <= 1 << 20


@pytest.mark.parametrize(
    ("headers", "coding"),
    [
        pytest.param(
            [(b"Content-Type", b"application/json"), (b"Content-Encoding", b"deflate"),
             (b"content-encoding", b"gzip")],
            "deflate, gzip",
            id="raw-pairs-any-case",
        ),
        pytest.param(
            httpx2.Headers([("content-encoding", "deflate"), ("content-encoding", "gzip")]),
            "deflate, gzip",
            id="httpx2-headers",
        ),
        pytest.param({"content-encoding": "deflate, gzip"}, "deflate, gzip", id="mapping"),
        pytest.param({"content-encoding": "gzip"}, "gzip", id="mapping-one"),
    ],
)  # fmt: skip
def test_every_coding_line_of_a_head_is_read(headers, coding):
    exchanges: list[Exchange] = []
    observer = _observer(exchanges)
    observer.on_response(200, headers)
    assert observer._coding == coding


def test_identity_takes_todays_path_with_no_decoder():
    exchanges: list[Exchange] = []
    observer = _observer(exchanges)
    observer.on_response(200, {"content-type": "text/event-stream", "content-encoding": "identity"})
    assert observer._decoder is None and observer._coding is None
    assert observer.chunk_sink == observer.stream.feed  # type: ignore[union-attr]
    assert "on_chunk" not in vars(observer)


def test_x_gzip_is_not_judged_as_httpx2_does_not_remove_it():
    # RFC 9110 reads x-gzip as gzip, but httpx2 hands it over as it came: the openai SDK and
    # ChatClient cannot read such an answer, so the observer does not call it a success.
    exchanges: list[Exchange] = []
    observer = _observer(exchanges)
    observer.on_response(200, {"content-type": "application/json", "content-encoding": "X-Gzip"})
    body = gzip.compress(COMPLETION)
    for index in range(0, len(body), 7):
        observer.chunk_sink(body[index : index + 7])
    exchange = observer.finish()
    assert exchange.failure is not None
    assert (exchange.failure.kind, exchange.failure.code) == ("http", "unsupported_encoding")
    assert exchange.response is not None and exchange.response.content_encoding == "x-gzip"


def test_a_mock_response_built_with_its_content_is_not_decoded_twice():
    # httpx2 removes the coding of content given to ``Response(...)`` itself.
    exchanges: list[Exchange] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
            content=gzip.compress(COMPLETION),
        )

    http = instrument(transport=httpx2.MockTransport(handler), sinks=[exchanges.append],
                      event_log=False)  # fmt: skip
    sdk = openai.OpenAI(base_url="http://up.test/v1", api_key=KEY, http_client=http,
                        max_retries=0)  # fmt: skip
    assert sdk.chat.completions.create(model=MODEL, messages=MESSAGES).choices
    [exchange] = exchanges
    assert exchange.failure is None, exchange.failure


def test_brotli_and_zstd_are_offered_only_with_httpx2s_libraries():
    have = set(_coding.supported_codings())
    assert {"gzip", "deflate"} <= have
    assert ("br" in have) == (_coding._brotli is not None)
    assert ("zstd" in have) == (_coding._ZstdDecompressor is not None)
    assert _coding.codings_of("gzip, identity") == ("gzip",)
    assert _coding.codings_of("x-gzip") is None  # httpx2 does not remove it
    assert _coding.codings_of("identity") == ()
    assert _coding.codings_of("gzip, " * 6) is None  # more than MAX_CODINGS
