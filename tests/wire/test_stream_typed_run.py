"""A read of several events, not tapped: the plain chunks it starts with are decoded in one
call, up to what the last read of a stream ends with ([DONE], the usage chunk), and the rest
one by one, to the result of the general way."""

import orjson
import pytest

from chatcontract.wire import StreamAssembler, StreamParser, StreamResult
from chatcontract.wire import stream as stream_module


def _chunk(text: str | None = None, **extra: object) -> bytes:
    doc: dict[str, object] = {"id": "c", "model": "m", "created": 1}
    if text is not None:
        doc["choices"] = [{"index": 0, "delta": {"role": "assistant", "content": text}}]
    doc.update(extra)
    return orjson.dumps(doc)


_USAGE = _chunk(choices=[], usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})
_FINISH = _chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
_DONE = b"[DONE]"


def _read(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + raw + b"\n\n" for raw in payloads)


class _General(StreamAssembler):
    """No typed decoder: every chunk read by orjson."""

    __slots__ = ()

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._typed_misses = 1_000_000


def _parse(reads: list[bytes], *, general: bool = False) -> StreamResult:
    parser = StreamParser(expect_usage=True)
    if general:
        parser._assembler = _General(expect_usage=True)
    for read in reads:
        parser.feed(read)
    return parser.close()


@pytest.fixture
def batches(monkeypatch):
    """How many payloads each ``decode_chunks`` call of the stream module was given."""
    sizes: list[int] = []
    real = stream_module.decode_chunks

    def decode_chunks(payloads):
        sizes.append(len(payloads))
        return real(payloads)

    monkeypatch.setattr(stream_module, "decode_chunks", decode_chunks)
    return sizes


@pytest.mark.parametrize(
    ("payloads", "sizes"),
    [
        pytest.param([_chunk("a"), _chunk("b"), _FINISH, _USAGE, _DONE], [3], id="up-to-usage"),
        pytest.param([_chunk("a"), _chunk("b"), _FINISH, _DONE], [3], id="up-to-done"),
        pytest.param([_chunk("a"), _chunk("b"), _FINISH], [3], id="all-of-them"),
        pytest.param([_chunk("a"), _USAGE, _DONE], [], id="one-then-usage"),
        pytest.param([_chunk("a"), _DONE], [], id="one-then-done"),
        pytest.param([_USAGE, _DONE], [], id="usage-then-done"),
    ],
)  # fmt: skip
def test_the_plain_chunks_a_read_starts_with_are_decoded_in_one_call(payloads, sizes, batches):
    reads = [_read(*payloads)]
    result = _parse(reads)
    assert batches == sizes
    assert result == _parse(reads, general=True)


def test_the_rest_of_the_read_after_the_run_is_read_too(batches):
    result = _parse([_read(_chunk("a"), _chunk("b"), _USAGE, _DONE)])
    assert (result.content, result.chunk_count, result.done_seen) == ("ab", 3, True)
    assert result.usage is not None and result.usage.total_tokens == 3
    assert batches == [2]


def test_the_template_is_learned_from_the_last_chunk_of_the_run():
    # the first chunk's delta opens with its role (no template); the run's last one with its
    # content; what follows the run gives none
    plain = orjson.dumps(
        {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "b"}}]}
    )
    parser = StreamParser(expect_usage=True)
    parser.feed(_read(_chunk("a"), plain, _USAGE, _DONE))
    template = parser._assembler._template
    assert template is not None and template.prefix.endswith(b'"delta":{"content":"')
