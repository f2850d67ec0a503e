"""The compiled decoder of the common completion body: msgspec, typed, every member known.

:func:`decode_body` turns the usual non-streamed answer (one choice, a string ``content`` and
``finish_reason``, well-formed ``usage``) into typed values in C, and returns None for anything
else, which :func:`~chatcontract.wire.completion.parse_completion` then reads the general way
(orjson, its fast path, then the full walk). Like the stream's chunk decoder (``_chunk``), it
only speeds up: it accepts a body only when the general way's fast path accepts it with the
same values, so nothing a caller sees depends on which way a body went:

- every member is declared and typed, unknown members are refused (nothing skipped unread:
  msgspec would skip a 10,000-digit number that orjson refuses);
- integers are bounded to 64 bits (orjson reads a larger one as a float);
- ``usage`` is read as the same dict orjson gives (members in order; values integers,
  objects of integers or null), which the fast path's usage check then reads;
- ``error``, ``tool_calls`` and anything unusual go the general way.

Never raises for any input.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta, Struct

__all__ = ["Body", "BodyChoice", "BodyMessage", "decode_body"]

#: See ``_chunk``: 64-bit signed integers only (orjson's ``int`` range, narrowed to what
#: msgspec can bound).
_Int = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
_UsageValue = _Int | dict[str, _Int | None] | None
#: ``[]`` only: a message with tool calls or annotations goes the general way.
_NoItems = Annotated[list[None], Meta(max_length=0)]


class BodyMessage(Struct, forbid_unknown_fields=True):
    content: str
    role: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    tool_calls: _NoItems | None = None
    annotations: _NoItems | None = None


class BodyChoice(Struct, forbid_unknown_fields=True):
    message: BodyMessage
    finish_reason: str
    index: _Int | None = None
    logprobs: None = None


class Body(Struct, forbid_unknown_fields=True):
    id: str
    model: str
    choices: Annotated[list[BodyChoice], Meta(min_length=1, max_length=1)]  # exactly one
    object: str | None = None
    created: _Int | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    usage: dict[str, _UsageValue] | None = None


_decode = msgspec.json.Decoder(Body).decode
_DecodeFailed = (msgspec.DecodeError, msgspec.ValidationError)


def decode_body(body: bytes) -> Body | None:
    """``body`` as a :class:`Body` of exactly one choice, or None when it is not the common
    shape (see the module's docstring). Never raises."""
    try:
        return _decode(body)
    except _DecodeFailed:
        return None
