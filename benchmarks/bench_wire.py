"""Benchmark: the wire parsers against the official openai SDK parsing the same bytes.

Two workloads, each measured for chatcontract and its baseline in the same run, with fixed
iteration counts (best of ``--repeats`` rounds):

- completion: an E1-shaped body (research/cometapi.md §8) with about 300 tokens of content.
  ``chatcontract.wire.parse_completion`` (decode + contract checks + frozen values) against
  the baseline: what ``client.chat.completions.create()`` itself runs on the body with the
  SDK's default settings (``_process_response_data``: ``json.loads`` + ``construct_type``).
  Two references are printed alongside: the SDK's strict mode
  (``_strict_response_validation=True``, ``ChatCompletion.model_validate_json``, pydantic-core
  in Rust) and ``orjson.loads`` alone (the floor any orjson-based parser pays).
- stream: 200 E11-shaped chunks plus the usage chunk and ``[DONE]``, delivered as 1 KiB reads.
  ``parse_stream`` (SSE decode + assembly + verdict) against the SDK's ``SSEDecoder`` plus
  ``ChatCompletionChunk.model_validate(json.loads(data))`` per event (no assembly).

Targets: completion >= 3x the SDK; stream >= 200,000 chunks/s on one core. Run with::

    .venv/bin/python benchmarks/bench_wire.py [--repeats 5] [--completions 20000] [--streams 300]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator

import orjson
from openai._models import construct_type
from openai._streaming import SSEDecoder as SDKDecoder
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from chatcontract.contract import load_preset
from chatcontract.wire import StreamVerdict, parse_completion, parse_stream

COMPLETION_TARGET = 3.0
STREAM_TARGET_CHUNKS_PER_S = 200_000
STREAM_CHUNKS = 200
READ_SIZE = 1024


def completion_body() -> bytes:
    """E1 with about 300 tokens of content."""
    content = " ".join(f"word{i % 50}" for i in range(300))
    return orjson.dumps(
        {
            "id": "chatcmpl-DNA27oKtBUL8TmbGpBM3B3zhWgYfZ",
            "object": "chat.completion",
            "created": 1774412483,
            "model": "gpt-4.1-nano-2025-04-14",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 29,
                "completion_tokens": 300,
                "total_tokens": 329,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_490a4ad033",
        }
    )


def stream_reads() -> list[bytes]:
    """200 E11-shaped chunks, the usage chunk and [DONE], cut into 1 KiB network reads."""

    def chunk(delta: dict[str, object], finish_reason: str | None = None) -> bytes:
        doc = {
            "id": "chatcmpl-CXbOXW75g3StGNZ0xvxo6y0LjcnCG",
            "object": "chat.completion.chunk",
            "created": 1762124605,
            "model": "gpt-5-2025-08-07",
            "service_tier": "default",
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
            "obfuscation": "xzrMXow",
        }
        return b"data: " + orjson.dumps(doc) + b"\n\n"

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": f" word{i % 50}"}) for i in range(STREAM_CHUNKS - 2)]
    events.append(chunk({}, "stop"))
    events.append(
        b'data: {"id":"chatcmpl-CXbOXW75g3StGNZ0xvxo6y0LjcnCG","object":"chat.completion.chunk",'
        b'"created":1762124605,"model":"gpt-5-2025-08-07","system_fingerprint":null,"choices":[],'
        b'"usage":{"prompt_tokens":29,"completion_tokens":198,"total_tokens":227}}\n\n'
    )
    events.append(b"data: [DONE]\n\n")
    body = b"".join(events)
    return [body[i : i + READ_SIZE] for i in range(0, len(body), READ_SIZE)]


def best_seconds(work: Callable[[], object], iterations: int, repeats: int) -> float:
    """The best per-iteration time over ``repeats`` rounds of ``iterations`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iterations):
            work()
        best = min(best, (time.perf_counter() - start) / iterations)
    return best


def sdk_stream(reads: list[bytes]) -> list[ChatCompletionChunk]:
    chunks = []
    events: Iterator[object] = SDKDecoder().iter_bytes(iter(reads))
    for sse in events:
        data = sse.data  # type: ignore[attr-defined]
        if data.startswith("[DONE]"):
            break
        chunks.append(ChatCompletionChunk.model_validate(json.loads(data)))
    return chunks


def check_equivalence(body: bytes, reads: list[bytes]) -> None:
    """Both sides must parse the same thing, or the timings mean nothing."""
    contract = load_preset("cometapi")
    ours = parse_completion(body, contract=contract)
    theirs = ChatCompletion.model_validate_json(body)
    assert ours.ok, ours.violations
    assert ours.completion is not None
    assert ours.completion.content == theirs.choices[0].message.content
    result = parse_stream(reads, contract=contract)
    assert result.verdict is StreamVerdict.COMPLETE, result.violations
    chunks = sdk_stream(reads)
    assert result.chunk_count == len(chunks) == STREAM_CHUNKS + 1
    sdk_content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert result.content == sdk_content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--completions", type=int, default=20_000)
    parser.add_argument("--streams", type=int, default=300)
    args = parser.parse_args()

    contract = load_preset("cometapi")
    body = completion_body()
    reads = stream_reads()
    check_equivalence(body, reads)

    print(f"completion: {len(body)} bytes, {args.completions} parses x {args.repeats} rounds")
    ours = best_seconds(
        lambda: parse_completion(body, contract=contract), args.completions, args.repeats
    )
    sdk = best_seconds(
        lambda: ChatCompletion.model_validate_json(body), args.completions, args.repeats
    )
    floor = best_seconds(lambda: orjson.loads(body), args.completions, args.repeats)
    default = best_seconds(
        lambda: construct_type(type_=ChatCompletion, value=json.loads(body)),
        args.completions,
        args.repeats,
    )
    ratio = default / ours
    print(f"  chatcontract parse_completion          {ours * 1e6:8.2f} us")
    print(f"  openai response path (json + construct) {default * 1e6:7.2f} us   (baseline)")
    print(f"  openai strict mode (model_validate_json) {sdk * 1e6:6.2f} us   (reference)")
    print(f"  orjson.loads alone                      {floor * 1e6:7.2f} us   (decode floor)")
    print(
        f"  ratio vs baseline: {ratio:.2f}x  target {COMPLETION_TARGET:.0f}x: "
        f"{'met' if ratio >= COMPLETION_TARGET else 'MISSED'}; vs strict mode: {sdk / ours:.2f}x "
        f"(orjson decode alone is {sdk / floor:.2f}x)"
    )

    total = sum(len(read) for read in reads)
    chunks = STREAM_CHUNKS + 1
    print(f"stream: {chunks} chunks, {total} bytes in {len(reads)} reads, {args.streams} streams")
    ours = best_seconds(lambda: parse_stream(reads, contract=contract), args.streams, args.repeats)
    sdk = best_seconds(lambda: sdk_stream(reads), max(args.streams // 3, 1), args.repeats)
    rate = chunks / ours
    print(f"  chatcontract parse_stream               {ours * 1e6:8.0f} us  {rate:12,.0f} chunks/s")
    sdk_rate = chunks / sdk
    print(
        f"  openai SSEDecoder + ChatCompletionChunk {sdk * 1e6:8.0f} us  {sdk_rate:12,.0f} chunks/s"
    )
    print(
        f"  ratio vs baseline: {sdk / ours:.2f}x  target {STREAM_TARGET_CHUNKS_PER_S:,} chunks/s: "
        f"{'met' if rate >= STREAM_TARGET_CHUNKS_PER_S else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
