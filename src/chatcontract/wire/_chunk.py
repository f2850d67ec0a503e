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
- ``tool_calls``, ``error`` and any other member are left to the general way; a ``usage``
  object has its own typed decoder (:func:`decode_usage_chunk`: counts and objects of
  counts, each a 64-bit integer or null), whose counts the caller still checks.

A stream's plain content chunks differ only after the opening of their content string:
everything before it (``id``, ``model``, ``created``...) is the same bytes in each.
:func:`learn_template` reads that common prefix once (a :class:`ChunkTemplate`), and
:meth:`ChunkTemplate.contents` then decodes only what follows it in each held chunk, behind a
short opening of the same nesting, to a narrower type (one choice, a ``content`` string, no
finish): about a third of the bytes, and no value decoded again that the prefix already gave.
What that narrower type accepts, the full decoder reads the same from the whole chunk.

Never raises for any input.
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = [
    "Chunk",
    "ChunkChoice",
    "ChunkDelta",
    "ChunkTemplate",
    "UsageChunk",
    "decode_chunk",
    "decode_chunks",
    "decode_usage_chunk",
    "learn_template",
]

#: orjson reads integers from -2**63 to 2**64 - 1 as ``int`` (a larger one as a float, a type
#: violation); msgspec would read any. 64-bit signed ones are taken (msgspec checks no wider
#: bound), the rest go the general way.
_Int = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]


# ``gc=False``: a decoded chunk holds only strings, numbers and these structs, never a cycle,
# so the garbage collector need not track (and walk) the thousands a stream decodes.


class ChunkDelta(Struct, forbid_unknown_fields=True, gc=False):
    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    tool_calls: None = None


class ChunkChoice(Struct, forbid_unknown_fields=True, gc=False):
    index: _Int | UnsetType = UNSET
    delta: ChunkDelta | None = None
    finish_reason: str | None = None
    logprobs: None = None


class Chunk(Struct, forbid_unknown_fields=True, gc=False):
    id: str | None = None
    object: str | None = None
    created: _Int | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    choices: list[ChunkChoice] | None = None
    usage: None = None
    obfuscation: str | None = None


#: What a ``usage`` object may hold on the typed way: counts and objects of counts (the
#: detail objects), each a 64-bit integer or null. Anything else goes the general way.
_UsageValue = _Int | dict[str, _Int | None] | None


class UsageChunk(Struct, forbid_unknown_fields=True, gc=False):
    """A chunk of the common shape that carries a ``usage`` object (the usage chunk of a
    stream): :class:`Chunk` but for ``usage``."""

    usage: dict[str, _UsageValue]
    id: str | None = None
    object: str | None = None
    created: _Int | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    choices: list[ChunkChoice] | None = None
    obfuscation: str | None = None


_decoder = msgspec.json.Decoder(Chunk)
_decode = _decoder.decode
_decode_lines = _decoder.decode_lines
_DecodeFailed = (msgspec.DecodeError, msgspec.ValidationError)
_decode_usage = msgspec.json.Decoder(UsageChunk).decode


def decode_usage_chunk(raw: bytes) -> UsageChunk | None:
    """``raw`` as a :class:`UsageChunk`, or None when it is not that shape (no ``usage``
    object, or anything :func:`decode_chunk` refuses but ``usage``). Never raises."""
    try:
        return _decode_usage(raw)
    except _DecodeFailed:
        return None


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


# ---------------------------------------------------------------------- templates
#
# A held chunk that starts with a template's prefix P is P + R. Decoding it reads P, which
# leaves the decoder inside the content string of choice 0's delta (nothing else open but the
# delta, that choice, the choices array and the chunk), then R. ``_OPENING`` opens the same
# nesting with no member before, so _OPENING + R is read exactly as R is read after P; the
# narrower types below accept R only when it holds no member that P may also hold (``id``,
# ``model``, ``created``, ``system_fingerprint`` and ``index`` are not declared), so the
# values of P + R are P's values and R's, none read twice.

_CONTENT_OPENED = b'"delta":{"content":"'
#: Closes a prefix: its content string, the delta, the choice, the choices array, the chunk.
_CLOSING = b'"}}]}'
_OPENING = b'{"choices":[{"delta":{"content":"'
_NEXT_OPENING = b"\n" + _OPENING
#: Joined in first: ``sep.join(chain(_NOTHING, parts))`` is ``sep + sep.join(parts)``, one copy.
_NOTHING = (b"",)
#: What may end a stream after its plain chunks, at most (:meth:`ChunkTemplate.run`): a finish,
#: a usage chunk, ``[DONE]``.
ENDING = 3
_DATA = b"data: "
_EVENT_END = b"\n\n"
_BETWEEN_EVENTS = _EVENT_END + _DATA


class _TailDelta(Struct, forbid_unknown_fields=True, gc=False):
    content: str
    role: str | None = None
    refusal: None = None
    reasoning_content: None = None
    tool_calls: None = None


class _TailChoice(Struct, forbid_unknown_fields=True, gc=False):
    delta: _TailDelta
    logprobs: None = None
    finish_reason: None = None


class _Tail(Struct, forbid_unknown_fields=True, gc=False):
    choices: tuple[_TailChoice]
    object: str | None = None
    service_tier: str | None = None
    usage: None = None
    obfuscation: str | None = None


_decode_tails = msgspec.json.Decoder(_Tail).decode_lines


class ChunkTemplate:
    """The bytes a stream's plain content chunks share before their content (``prefix``),
    and the values they give: each chunk that starts with ``prefix`` and is read by
    :meth:`contents` is one with these ``id``, ``model``, ``created`` and
    ``system_fingerprint``, choice 0 only, its ``content`` delta, and no finish reason."""

    __slots__ = (
        "_event_head",
        "_middle",
        "_rest",
        "created",
        "id",
        "model",
        "prefix",
        "system_fingerprint",
    )

    def __init__(self, prefix: bytes, head: Chunk) -> None:
        self.prefix = prefix
        self._rest = itemgetter(slice(len(prefix), None))  # what follows the prefix
        # A read that is one whole event of this template: its ``data: `` line up to the
        # content, and (``_middle``) what follows that up to the blank line ending the event.
        self._event_head = _DATA + prefix
        self._middle = itemgetter(slice(len(_DATA) + len(prefix), -len(_EVENT_END)))
        self.id = head.id
        self.model = head.model
        self.created = head.created
        self.system_fingerprint = head.system_fingerprint

    def contents(self, payloads: list[bytes]) -> list[str] | None:
        """The non-empty ``content`` of each payload, in order, when every one is a plain
        content chunk of this template; else None (read them the usual way). The payloads
        hold no line feed (the SSE decoder's fast path gives only such). Never raises."""
        prefix = self.prefix
        # All start with the prefix when the least and the greatest do (in C, no call each).
        if not (min(payloads).startswith(prefix) and max(payloads).startswith(prefix)):
            return None
        try:  # one line each: no payload holds a line feed, none is blank
            # A blank line first (skipped): no copy of the joined lines to put the opening first
            tails = _decode_tails(_NEXT_OPENING.join(chain(_NOTHING, map(self._rest, payloads))))
        except _DecodeFailed:
            return None
        # The line decoder also reads JSON values that follow each other on one line: a
        # payload holding more than one (a malformed chunk) gives more tails than payloads.
        if len(tails) != len(payloads):
            return None
        return [text for tail in tails if (text := tail.choices[0].delta.content)]

    def content(self, payload: bytes) -> str | None:
        """:meth:`contents` of one payload: its ``content`` (empty or not) when it is a plain
        content chunk of this template; else None. The payload holds no line feed. Never
        raises."""
        if not payload.startswith(self.prefix):
            return None
        try:
            tails = _decode_tails(_OPENING + self._rest(payload))
        except _DecodeFailed:
            return None
        # one value: a second one after the chunk makes it malformed (see :meth:`contents`)
        return tails[0].choices[0].delta.content if len(tails) == 1 else None

    def run(self, payloads: list[bytes]) -> int:
        """How many leading payloads to read with :meth:`contents`: all but those at the end
        (at most :data:`ENDING`: a finish, a usage chunk, ``[DONE]``) that do not start
        with the prefix. Only a choice of the call's size: results do not depend on it."""
        prefix = self.prefix
        end = len(payloads)
        last = max(0, end - ENDING)
        while end > last and not payloads[end - 1].startswith(prefix):
            end -= 1
        return end

    def reads(self, reads: list[bytes], joined: bytes) -> list[str] | None:
        """:meth:`contents` of the events in ``joined`` (``b"".join(reads)``, read from
        between two events), without cutting it into events first: when each read is one
        whole ``data:`` event of a plain content chunk of this template (``data: ``, the
        prefix, the rest of the chunk on that one line, a blank line), the non-empty
        ``content`` of each read, in order; else None (decode the bytes the usual way).
        Never raises.

        Exact, whatever the bytes: each read starts with the event's head (the least and
        the greatest do); ``\n\ndata: `` occurs once between each two reads and nowhere
        else, and ``joined`` ends with a blank line, so each read ends with one (an
        occurrence inside a read would leave a line feed in what is decoded below); the
        middles (each read without its head and its last two bytes) hold no line feed or
        carriage return, so each read is one line and a blank line; and the middles, each
        behind the same opening, decode to as many tails as there are reads (a middle holding
        more than one JSON value gives more; none can run into the next one's opening, which
        no member of the narrow types accepts)."""
        head = self._event_head
        if not (min(reads).startswith(head) and max(reads).startswith(head)):
            return None
        count = len(reads)
        if joined.count(_BETWEEN_EVENTS) != count - 1 or not joined.endswith(_EVENT_END):
            return None
        tails = _OPENING.join(chain(_NOTHING, map(self._middle, reads)))  # the opening first
        if 0x0A in tails or 0x0D in tails:  # memchr each: a line feed or a CR is a line end
            return None
        try:  # one line: the values follow each other, as many as there are reads
            decoded = _decode_tails(tails)
        except _DecodeFailed:
            return None
        if len(decoded) != count:
            return None
        return [text for tail in decoded if (text := tail.choices[0].delta.content)]


def learn_template(raw: bytes) -> ChunkTemplate | None:
    """The template of ``raw``, a payload (only its prefix is decoded, so it need not have
    been), when it is a content chunk whose delta opens with its ``content`` and what comes
    before it is choice 0 only (index 0 or none), no finish reason; else None. Never raises."""
    at = raw.find(_CONTENT_OPENED)
    if at < 0:
        return None
    prefix = raw[: at + len(_CONTENT_OPENED)]
    head = decode_chunk(prefix + _CLOSING)  # what the prefix alone gives
    if head is None or len(head.choices or ()) != 1:
        return None
    choice = head.choices[0]  # type: ignore[index]
    if (choice.index is not UNSET and choice.index != 0) or choice.finish_reason:
        return None
    return ChunkTemplate(prefix, head)
