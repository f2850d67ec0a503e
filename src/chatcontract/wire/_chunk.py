"""The compiled decoder of the common stream chunk: msgspec, typed, every field known.

A stream's chunks nearly all look alike (``id``, ``model``, one choice with a ``content``
delta); :func:`decode_chunk` turns one into typed values in C, without building dicts, and
returns None for anything else, which the stream assembler then reads the general way
(``orjson``, field by field, with a violation for each wrong type). It only speeds up: it
accepts a payload only when the general way would read exactly the same values from it and
report nothing, so a verdict never depends on which way a chunk went:

- Every member is declared and typed, and unknown members are refused
  (``forbid_unknown_fields``): nothing is skipped unread. (msgspec skips unknown members
  without checking their numbers, where orjson refuses, e.g., a 10,000-digit one.)
- Members the general way ignores are still typed narrowly (``role``, ``object``,
  ``logprobs``...): an unusual value sends the chunk the general way, which ignores it.
- Integers outside orjson's range (64 bits; orjson reads a larger one as a float, a type
  violation) are refused (``created``, ``index``).
- ``usage``, ``tool_calls``, ``error`` and any other member are left to the general way
  (once per stream for usage).

Never raises for any input.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = ["Chunk", "ChunkChoice", "ChunkDelta", "decode_chunk", "decode_chunks"]

#: orjson reads integers from -2**63 to 2**64 - 1 as ``int`` (a larger one as a float, a type
#: violation); msgspec would read any. 64-bit signed ones are taken (msgspec checks no wider
#: bound), the rest go the general way.
_Int = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]


class ChunkDelta(Struct, forbid_unknown_fields=True):
    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    tool_calls: None = None


class ChunkChoice(Struct, forbid_unknown_fields=True):
    index: _Int | UnsetType = UNSET
    delta: ChunkDelta | None = None
    finish_reason: str | None = None
    logprobs: None = None


class Chunk(Struct, forbid_unknown_fields=True):
    id: str | None = None
    object: str | None = None
    created: _Int | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    choices: list[ChunkChoice] | None = None
    usage: None = None
    obfuscation: str | None = None


_decoder = msgspec.json.Decoder(Chunk)
_decode = _decoder.decode
_decode_lines = _decoder.decode_lines
_DecodeFailed = (msgspec.DecodeError, msgspec.ValidationError)


def decode_chunk(raw: bytes) -> Chunk | None:
    """``raw`` (one ``data:`` payload) as a :class:`Chunk`, or None when it is not the
    common shape (see the module's docstring). Never raises."""
    try:
        return _decode(raw)
    except _DecodeFailed:
        return None


def decode_chunks(payloads: list[bytes]) -> list[Chunk] | None:
    """Every payload (none holding a line feed) as a :class:`Chunk`, in one call; None
    when any of them is not the common shape (the caller then takes them one by one).
    Never raises."""
    try:
        chunks = _decode_lines(b"\n".join(payloads))
    except _DecodeFailed:
        return None
    # Blank lines are skipped by the line decoder: a blank payload would shift the rest.
    return chunks if len(chunks) == len(payloads) else None
