"""Streamed completions: assemble SSE chunks and say whether the stream really completed.

A stream that returned 200 can still fail: it can be cut mid-answer (a clean close, or a
dropped connection), stall, carry a chunk
that is not JSON, deliver ``{"error": …}`` as an event, or end with ``data: [DONE]`` without
any ``finish_reason`` (new-api does this after an upstream timeout). :class:`StreamAssembler`
accumulates content, reasoning, refusal and tool-call deltas, the usage chunk and metadata,
and :class:`StreamVerdict` names what happened. :class:`StreamParser` wraps the SSE decoder
and the assembler for the transport, which feeds bytes with monotonic timestamps::

    parser = StreamParser(contract=contract)
    for chunk in response.iter_bytes():
        parser.feed(chunk, now=time.monotonic())
    result = parser.close()
    result.verdict, result.content, result.first_token_at

Nothing here raises for bad input; only misuse (feeding a closed parser) raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from msgspec import UNSET, Struct

from chatcontract.contract.model import Contract, Streaming
from chatcontract.wire._chunk import (
    Chunk,
    ChunkTemplate,
    UsageChunk,
    decode_chunk,
    decode_chunks,
    decode_usage_chunk,
    learn_template,
)
from chatcontract.wire._json import OUT_OF_RANGE_EXPECTED, loads, loads_object, out_of_range
from chatcontract.wire._tool_deltas import ToolDraft, tool_call_fields
from chatcontract.wire.completion import Completion, ToolCall, Usage, parse_usage
from chatcontract.wire.completion import _fast_usage as fast_usage
from chatcontract.wire.error_body import (
    ErrorBody,
    error_from_document,
    is_error_envelope,
    parse_error_body,
)
from chatcontract.wire.sse import DONE, MAX_RETRY_MS, SSEDecoder, SSEEvent
from chatcontract.wire.violation import Violation, ViolationKind, describe

__all__ = ["StreamAssembler", "StreamParser", "StreamResult", "StreamVerdict", "parse_stream"]

_DEFAULT_STREAMING = Streaming()

#: At most this many violations are kept per stream; the verdict is unaffected.
MAX_VIOLATIONS = 100

#: After this many chunks in a row that the typed decoder refused (a provider whose chunks
#: carry other members), a stream stops trying it: the general way alone is cheaper then.
_TYPED_MISSES = 8

#: A stream looks for its plain chunks' template (``_chunk.learn_template``) in at most this
#: many chunks the typed decoder took, until one gives it.
_TEMPLATE_TRIES = 4


class StreamVerdict(StrEnum):
    """How a stream ended. Only ``complete`` is a success."""

    COMPLETE = "complete"  # finish_reason seen, then [DONE] (or a clean close if not required)
    NO_DONE = "no_done"  # finish_reason seen, closed without the contracted [DONE]
    TRUNCATED = "truncated"  # [DONE] without any finish_reason
    CUT = "cut"  # closed mid-answer: no finish_reason, no [DONE]
    DROPPED = "dropped"  # the connection failed mid-answer (reset, incomplete chunked body)
    STALLED = "stalled"  # the caller's idle limit passed before the end
    MALFORMED_CHUNK = "malformed_chunk"  # a data payload not JSON, or a chunk of the wrong shape
    INBAND_ERROR = "inband_error"  # an {"error": …} event (or an ``event: error``)
    # The caller closed the stream before it ended (broke out of its loop, closed it, was
    # cancelled): its own choice, no failure of the provider; what did not come is not judged.
    CLOSED = "closed"


class StreamResult(Struct, frozen=True, kw_only=True):
    """Everything a stream carried, and its verdict.

    ``content``, ``reasoning_content`` and ``refusal`` are the concatenated deltas of choice 0
    (empty strings when none arrived); ``tool_calls`` are assembled by ``index`` with their
    ``arguments`` concatenated. ``first_token_at`` is the ``now`` passed with the first
    non-empty content, reasoning or tool-call delta. ``ping_count`` counts keep-alives (``:``
    comments and blank data events). ``missing_usage`` is True when a usage chunk was
    contracted, the answer finished, and none arrived; it does not change the verdict.
    Violation paths look like ``$[chunk 3].choices[0].delta.content`` (chunks count from 0).
    """

    verdict: StreamVerdict
    content: str
    reasoning_content: str
    refusal: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    usage: Usage | None
    model: str | None
    id: str | None
    created: int | None
    system_fingerprint: str | None
    chunk_count: int
    ping_count: int
    first_token_at: float | None
    done_seen: bool
    missing_usage: bool
    error: ErrorBody | None
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        """True when the stream completed (violations such as a missing usage chunk aside)."""
        return self.verdict is StreamVerdict.COMPLETE

    def as_completion(self) -> Completion:
        """The assembled stream as a :class:`Completion` (what a non-streamed call returns)."""
        content = self.content
        return Completion(
            id=self.id,
            model=self.model,
            created=self.created,
            system_fingerprint=self.system_fingerprint,
            content=content if content or not self.tool_calls else None,
            refusal=self.refusal or None,
            reasoning_content=self.reasoning_content or None,
            tool_calls=self.tool_calls,
            finish_reason=self.finish_reason,
            usage=self.usage,
            choice_count=1 if self.chunk_count else 0,
        )


class StreamAssembler:
    """Accumulate decoded SSE events into a :class:`StreamResult`.

    Only choice 0 is assembled (what the application reads); every choice is shape-checked.
    Events after ``[DONE]`` are ignored and reported once.

    Args:
        contract: ``streaming.require_done`` and ``streaming.include_usage`` set what a
            complete stream is; ``errors.request_id_pattern`` reads in-band errors.
            ``None`` uses ``Streaming()`` defaults.
        expect_usage: overrides ``streaming.include_usage`` (the transport knows whether
            this request asked for ``stream_options.include_usage``).
    """

    __slots__ = (
        "_after_done",
        "_blank_count",
        "_chunk_count",
        "_content",
        "_created",
        "_done",
        "_error",
        "_expect_usage",
        "_fingerprint",
        "_finish_reason",
        "_first_token",
        "_first_token_at",
        "_id",
        "_malformed",
        "_model",
        "_pattern",
        "_reasoning",
        "_refusal",
        "_rejected",
        "_require_done",
        "_template",
        "_template_tries",
        "_tools",
        "_typed_misses",
        "_usage",
        "_violations",
    )

    def __init__(self, *, contract: Contract | None = None, expect_usage: bool | None = None):
        streaming = contract.streaming if contract is not None else _DEFAULT_STREAMING
        self._require_done = streaming.require_done
        self._expect_usage = streaming.include_usage if expect_usage is None else expect_usage
        self._pattern = contract.errors.request_id_pattern if contract is not None else None
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._tools: dict[int, ToolDraft] = {}
        self._violations: list[Violation] = []
        self._usage: Usage | None = None
        self._error: ErrorBody | None = None
        self._finish_reason: str | None = None
        self._id: str | None = None
        self._model: str | None = None
        self._created: int | None = None
        self._fingerprint: str | None = None
        self._first_token_at: float | None = None
        self._first_token = False
        self._chunk_count = 0
        self._blank_count = 0
        self._done = False
        self._after_done = False
        self._malformed = False
        self._rejected = 0  # events rejected (malformed, in-band error, cut): never forwarded
        self._typed_misses = 0
        self._template: ChunkTemplate | None = None
        self._template_tries = _TEMPLATE_TRIES

    # ------------------------------------------------------------------ feeding

    def push(self, event: SSEEvent, now: float | None = None, *, final: bool = False) -> None:
        """Take one decoded event. ``final`` marks an event flushed at the end of the stream
        (an unparsable one then means the stream was cut inside it, not a malformed chunk)."""
        self._push(event.data, now, event.event, final)

    def push_data(
        self, data: str, *, now: float | None = None, event: str = "message", final: bool = False
    ) -> None:
        """Take one event's data payload (see :meth:`push`)."""
        self._push(data, now, event, final)

    def _push_payloads(self, payloads: list[bytes], now: float | None) -> None:
        """:meth:`_push` each plain ``data:`` payload (raw UTF-8 bytes), in order.

        The hot path of a stream: a payload that is a JSON object (and no error envelope) is
        decoded from its bytes and taken at once; anything else, including bytes that are not
        UTF-8, goes through :meth:`_push` as text decoded with ``errors="replace"``, which
        gives it exactly the verdict it always had.
        """
        if len(payloads) > 1 and self._typed_misses < _TYPED_MISSES and not self._done:
            payloads = self._take_batch(payloads, now)
        for raw in payloads:
            if raw[:1] == b"{" and not self._done:
                if self._typed_misses < _TYPED_MISSES:
                    if self._template is not None and self._take_plain(raw, now):
                        continue
                    if raw.find(_USAGE_OBJECT) >= 0:  # the usage chunk: its own typed decoder
                        if self._take_usage(raw, now):
                            continue
                    else:
                        chunk = decode_chunk(raw)
                        if chunk is not None:
                            if self._typed_misses:
                                self._typed_misses = 0
                            self._chunk_count += 1
                            self._take_chunk(chunk, now)
                            if self._template is None and self._template_tries:
                                self._learn(raw)
                            continue
                    self._typed_misses += 1
                doc = loads_object(raw)
                if doc is not None and "error" not in doc:
                    n = self._chunk_count
                    self._chunk_count = n + 1
                    self._take(doc, n, now)
                    continue
            self._push(raw.decode("utf-8", "replace"), now, "message", False)

    def _take_batch(self, payloads: list[bytes], now: float | None) -> list[bytes]:
        """What :meth:`_push_payloads` does first with several payloads, the typed decoder
        still on: plain chunks through the template (learned first, from these payloads, when
        there is none yet), then the rest in one typed decode, up to what the last read of
        a stream ends with ([DONE], the usage chunk), which the typed decoder refuses.
        Returns what is left, to take one by one."""
        template = self._template
        if template is None and self._template_tries:
            template = self._learn_ahead(payloads)
            if template is not None and not payloads[0].startswith(template.prefix):
                self._push_payloads(payloads[:1], now)  # what comes before it (the role)
                payloads = payloads[1:]
                if self._typed_misses >= _TYPED_MISSES or self._done:
                    return payloads  # one by one, as they would have gone
        if template is not None:
            run = self._take_run(template, payloads, now)
            if run:
                payloads = payloads[run:]
                if not payloads:
                    return payloads
        run = _typed_run(payloads)
        if run > 1:
            chunks = decode_chunks(payloads[:run])
            if chunks is not None:
                self._typed_misses = 0  # chunks the typed decoder takes, in a row
                self._chunk_count += run
                take = self._take_chunk
                for held in chunks:
                    take(held, now)
                if template is None and self._template_tries and run > 2:
                    self._learn(payloads[run - 1])  # the first two were tried before
                payloads = payloads[run:]
        return payloads

    def _take_plain(self, raw: bytes, now: float | None) -> bool:
        """Take ``raw``, one payload, when it is a plain content chunk of ``self._template``
        (which the caller checked is set: a stream without one pays no call per chunk) as the
        typed decoder and :meth:`_take_chunk` would, and return True; else return False,
        having done nothing."""
        template = self._template
        assert template is not None
        text = template.content(raw)
        if text is None:
            return False
        if self._typed_misses:
            self._typed_misses = 0
        self._take_contents(template, 1, [text] if text else [], now)
        return True

    def _take_usage(self, raw: bytes, now: float | None) -> bool:
        """Take ``raw``, a payload holding a ``usage`` object, as :meth:`_take` would, when
        the typed decoder reads it and its counts are well formed (nothing to report), and
        return True; else return False, having done nothing (the general way reports it)."""
        chunk = decode_usage_chunk(raw)
        if chunk is None:
            return False
        read = fast_usage(chunk.usage)
        if read is None:
            return False
        if self._typed_misses:
            self._typed_misses = 0
        self._chunk_count += 1
        self._take_chunk(chunk, now)
        self._usage = read[0]
        return True

    def _learn(self, raw: bytes) -> None:
        """Look for the template of ``raw``, a chunk the typed decoder took."""
        self._template_tries -= 1
        self._template = learn_template(raw)

    def _learn_ahead(self, payloads: list[bytes]) -> ChunkTemplate | None:
        """Look for the template of several payloads before they are decoded: in the
        first, else in the second (a stream's first chunk often carries only the role), so
        that a stream's first read already goes through it. What a template gives comes from
        its prefix alone (:func:`learn_template` decodes nothing else), so which payload it
        is learned from changes no result, and a payload not yet decoded will do."""
        for raw in payloads[:2]:
            if self._template_tries and raw[:1] == b"{":
                self._learn(raw)
                if self._template is not None:
                    return self._template
        return None

    def _take_run(self, template: ChunkTemplate, payloads: list[bytes], now: float | None) -> int:
        """Take the leading plain chunks of ``template`` in ``payloads`` (at the end of a
        stream, up to what ends it: the finish, the usage chunk, [DONE]) in one pass, and
        return how many; 0 when they are not all plain chunks (nothing is taken)."""
        run = template.run(payloads)
        if run:
            texts = template.contents(payloads[:run])
            if texts is not None:
                self._typed_misses = 0  # chunks the typed decoder takes, in a row
                self._take_contents(template, run, texts, now)
                return run
        return 0

    def _take_contents(
        self, template: ChunkTemplate, count: int, texts: list[str], now: float | None
    ) -> None:
        """Assemble ``count`` plain chunks of ``template`` whose non-empty contents are
        ``texts``: what :meth:`_take_chunk` does with each of them."""
        self._chunk_count += count
        if self._id is None:
            self._id = template.id
        if self._model is None:
            self._model = template.model
        if self._created is None:
            self._created = template.created
        if template.system_fingerprint is not None:
            self._fingerprint = template.system_fingerprint
        if texts:
            self._content += texts
            if not self._first_token:
                self._first_token = True
                self._first_token_at = now

    def _take_chunk(self, chunk: Chunk | UsageChunk, now: float | None) -> None:
        """Assemble a chunk of the common shape (:func:`decode_chunk`: every value has the
        right type, so nothing is to report): what :meth:`_take` does with the same values."""
        choices = chunk.choices
        if choices:
            token = False
            for position, choice in enumerate(choices):
                index = choice.index
                assemble = (position if index is UNSET else index) == 0
                if not assemble:
                    continue  # only choice 0 is assembled; the others were shape-checked
                finish_reason = choice.finish_reason
                if finish_reason:  # "" is not a finish (see ``_choice``)
                    self._finish_reason = finish_reason
                delta = choice.delta
                if delta is None:
                    continue
                text = delta.content
                if text:
                    self._content.append(text)
                    token = True
                text = delta.reasoning_content
                if text:
                    self._reasoning.append(text)
                    token = True
                text = delta.refusal
                if text:
                    self._refusal.append(text)
            if token and not self._first_token:
                self._first_token = True
                self._first_token_at = now
        if self._id is None:
            self._id = chunk.id
        if self._model is None:
            self._model = chunk.model
        if self._created is None:
            self._created = chunk.created
        if chunk.system_fingerprint is not None:
            self._fingerprint = chunk.system_fingerprint

    def _push(self, data: str, now: float | None, event: str, final: bool) -> None:
        # One call per event, positional, paths built only for violations.
        if self._done:
            if not final:  # an event the body's end cut (never dispatched) is no data
                self._after_done_event()
            return
        if data[:1] != "{":
            if data.strip() == DONE:
                self._done = True
                return
            if not data or data.isspace():
                self._blank_count += 1
                return
        n = self._chunk_count
        self._chunk_count = n + 1
        doc, error_at = loads(data)
        if error_at is not None:
            self._unparsable(data, n, error_at, event, final)
            return
        if type(doc) is not dict:
            self._bad(ViolationKind.NOT_OBJECT, f"$[chunk {n}]", "a chunk object", describe(doc))
            return
        if event == "error" or ("error" in doc and is_error_envelope(doc)):
            self._inband(error_from_document(doc, request_id_pattern=self._pattern), n)
            return
        self._take(doc, n, now)

    def _take(self, doc: dict[str, Any], n: int, now: float | None) -> None:
        """Assemble chunk ``n``, a JSON object that is not an error envelope."""
        get = doc.get
        choices = get("choices")
        if type(choices) is list:
            if not (len(choices) == 1 and self._content_only(choices[0], now)):
                for position, choice in enumerate(choices):
                    self._choice(choice, n, position, now)
        elif choices is not None:
            self._bad(ViolationKind.TYPE, f"$[chunk {n}].choices", "array", describe(choices))
        value = get("id")
        if type(value) is str:
            if self._id is None:
                self._id = value
        elif value is not None:
            self._bad_type(n, "id", "string", value)
        value = get("model")
        if type(value) is str:
            if self._model is None:
                self._model = value
        elif value is not None:
            self._bad_type(n, "model", "string", value)
        value = get("created")
        if type(value) is int:
            if self._created is None:
                self._created = value
        elif value is not None:
            self._bad_type(n, "created", "integer", value)
        value = get("system_fingerprint")
        if type(value) is str:
            self._fingerprint = value
        elif value is not None:
            self._bad_type(n, "system_fingerprint", "string", value)
        usage = get("usage")
        if usage is not None:
            found: list[Violation] = []
            self._usage = parse_usage(usage, f"$[chunk {n}].usage", found)
            for violation in found:  # through the cap, like every violation
                self._record_bad(violation)

    def _content_only(self, choice: object, now: float | None) -> bool:
        """The common chunk: choice 0 with a ``content`` string as its whole delta and no
        ``finish_reason``. Takes it and returns True; returns False, having done nothing, for
        any other shape (``_choice`` then checks it field by field, to the same effect)."""
        if type(choice) is not dict:
            return False
        get = choice.get
        index = get("index", 0)
        if type(index) is not int or index or get("finish_reason") is not None:
            return False
        delta = get("delta")
        if type(delta) is not dict or len(delta) != 1:
            return False
        text = delta.get("content")
        if type(text) is not str:
            return False
        if text:
            self._content.append(text)
            if not self._first_token:
                self._first_token = True
                self._first_token_at = now
        return True

    def _choice(self, choice: object, n: int, position: int, now: float | None) -> None:
        if type(choice) is not dict:
            self._bad_type(n, f"choices[{position}]", "object", choice)
            return
        get = choice.get
        index = get("index", position)
        if type(index) is not int:
            self._bad_type(n, f"choices[{position}].index", "integer", index)
            return
        assemble = index == 0
        finish_reason = get("finish_reason")
        if finish_reason is not None:
            if type(finish_reason) is not str:
                self._bad_type(n, f"choices[{position}].finish_reason", "string", finish_reason)
            elif assemble and finish_reason:
                # "" is not a finish: some providers send it on every chunk instead of null
                self._finish_reason = finish_reason
        delta = get("delta")
        if type(delta) is not dict:
            if delta is not None:
                self._bad_type(n, f"choices[{position}].delta", "object", delta)
            return
        get = delta.get
        token = False
        text = get("content")
        if type(text) is str:
            if text and assemble:
                self._content.append(text)
                token = True
        elif text is not None:
            self._bad_type(n, f"choices[{position}].delta.content", "string", text)
        text = get("reasoning_content")
        if type(text) is str:
            if text and assemble:
                self._reasoning.append(text)
                token = True
        elif text is not None:
            self._bad_type(n, f"choices[{position}].delta.reasoning_content", "string", text)
        text = get("refusal")
        if type(text) is str:
            if text and assemble:
                self._refusal.append(text)
        elif text is not None:
            self._bad_type(n, f"choices[{position}].delta.refusal", "string", text)
        calls = get("tool_calls")
        if calls is not None:
            where = f"$[chunk {n}].choices[{position}].delta.tool_calls"
            token = self._tool_calls(calls, where, assemble) or token
        if token and not self._first_token:
            self._first_token = True
            self._first_token_at = now

    def _unparsable(self, data: str, n: int, error_at: int, event: str, final: bool) -> None:
        if final:
            # flushed at the end of the body: the stream was cut inside this chunk
            self._violate(
                ViolationKind.CUT_CHUNK, f"$[chunk {n}]", "a complete JSON chunk", "end of stream"
            )
        elif event == "error":
            self._inband(parse_error_body(data.encode(), request_id_pattern=self._pattern), n)
        elif (wide := out_of_range(data, error_at)) is not None:
            # valid JSON, but a number no JSON decoder holds: named with its path
            path, length = wide
            got = f"a {length}-character number at character {error_at}"
            self._bad(ViolationKind.INVALID_JSON, f"$[chunk {n}]{path}", OUT_OF_RANGE_EXPECTED, got)
        else:
            got = f"invalid JSON at character {error_at}"
            self._bad(ViolationKind.INVALID_JSON, f"$[chunk {n}]", "JSON", got)

    def _after_done_event(self) -> None:
        if not self._after_done:
            self._after_done = True
            self._violate(
                ViolationKind.AFTER_DONE, "$[after DONE]", "end of stream", "a data event"
            )

    def _bad_type(self, n: int, where: str, expected: str, value: object) -> None:
        self._bad(ViolationKind.TYPE, f"$[chunk {n}].{where}", expected, describe(value))

    def _tool_calls(self, calls: object, where: str, assemble: bool) -> bool:
        """Merge tool-call deltas by ``index`` (position when absent); True if any arrived."""
        if type(calls) is not list:
            self._bad(ViolationKind.TYPE, where, "array", describe(calls))
            return False
        seen = False
        for position, call in enumerate(calls):
            at = f"{where}[{position}]"
            if type(call) is not dict:
                self._bad(ViolationKind.TYPE, at, "object", describe(call))
                continue
            fields = tool_call_fields(call, at)
            if isinstance(fields, Violation):
                self._record_bad(fields)
                continue
            if assemble:
                index, call_id, call_type, name, arguments = fields
                draft = self._tools.get(index if index is not None else position)
                if draft is None:
                    draft = self._tools[index if index is not None else position] = ToolDraft()
                draft.merge(call_id, call_type, name, arguments)
                seen = True
        return seen

    def _inband(self, error: ErrorBody, n: int) -> None:
        if self._error is None:
            self._error = error
        self._violate(ViolationKind.ERROR_ENVELOPE, f"$[chunk {n}]", "a chunk", "an error event")

    def _bad(self, kind: ViolationKind, path: str, expected: str, got: str) -> None:
        self._malformed = True
        self._violate(kind, path, expected, got)

    def _record_bad(self, violation: Violation) -> None:
        self._malformed = True
        self._rejected += 1
        if len(self._violations) < MAX_VIOLATIONS:
            self._violations.append(violation)

    def _violate(self, kind: ViolationKind, path: str, expected: str, got: str) -> None:
        self._rejected += 1
        if len(self._violations) < MAX_VIOLATIONS:
            self._violations.append(Violation(kind=kind, path=path, expected=expected, got=got))

    # ------------------------------------------------------------------ reading

    @property
    def chunk_count(self) -> int:
        """Data events other than ``[DONE]`` and blank keep-alives taken so far."""
        return self._chunk_count

    @property
    def done_seen(self) -> bool:
        """True once ``data: [DONE]`` arrived."""
        return self._done

    @property
    def finish_reason(self) -> str | None:
        """The last ``finish_reason`` of choice 0 so far."""
        return self._finish_reason

    @property
    def first_token_at(self) -> float | None:
        """The ``now`` given with the first content, reasoning or tool-call delta."""
        return self._first_token_at

    def text_mark(self) -> tuple[int, int]:
        """A mark of the content and reasoning assembled so far, for :meth:`text_since`."""
        return len(self._content), len(self._reasoning)

    def text_since(self, mark: tuple[int, int]) -> tuple[str, str]:
        """The content and reasoning of choice 0 assembled after ``mark``: what a reader
        delivers for the events pushed since, so that what it delivered is exactly the
        result's ``content`` and ``reasoning_content``."""
        content, reasoning = mark
        return "".join(self._content[content:]), "".join(self._reasoning[reasoning:])

    @property
    def has_tool_calls(self) -> bool:
        """True once a tool-call fragment of choice 0 was assembled."""
        return bool(self._tools)

    def tool_marks(self) -> dict[int, int]:
        """A mark of the tool-call argument fragments assembled so far (per call index), for
        :meth:`tool_calls_since`."""
        return {index: len(draft.arguments) for index, draft in self._tools.items()}

    def tool_calls_since(
        self, marks: dict[int, int]
    ) -> list[tuple[int, str | None, str | None, str]]:
        """``(index, id, name, arguments)`` of each tool call of choice 0 that changed after
        ``marks``: id and name when the call is new since, the argument text added since."""
        changed = []
        for index, draft in self._tools.items():
            seen = marks.get(index)
            if seen is None:
                changed.append((index, draft.id, draft.name, "".join(draft.arguments)))
            elif len(draft.arguments) > seen:
                changed.append((index, None, None, "".join(draft.arguments[seen:])))
        return changed

    @property
    def decided(self) -> StreamVerdict | None:
        """A verdict already certain before the stream ends (an in-band error, a malformed
        chunk, or ``[DONE]``), else None."""
        if self._error is not None:
            return StreamVerdict.INBAND_ERROR
        if self._malformed:
            return StreamVerdict.MALFORMED_CHUNK
        if self._done:
            finished = self._finish_reason is not None
            return StreamVerdict.COMPLETE if finished else StreamVerdict.TRUNCATED
        return None

    def result(
        self,
        *,
        stalled: bool = False,
        dropped: bool = False,
        closed: bool = False,
        ping_count: int = 0,
        other_line_count: int = 0,
        invalid_retry_count: int = 0,
    ) -> StreamResult:
        """The stream as it stands, judged as if it ended now.

        Args:
            stalled: the caller's idle limit passed (the stream did not end by itself).
            dropped: reading the body failed (the connection was reset or closed in the
                middle of the HTTP body): an unfinished stream is ``dropped``, not ``cut``.
            closed: the caller closed the stream before its end: an unfinished stream is
                ``closed`` (not a failure), and a usage chunk still owed is not missing.
            ping_count: keep-alive comments counted by the SSE decoder.
            other_line_count: non-SSE lines seen by the decoder; a stream with nothing else
                is reported as not SSE (``malformed_chunk``).
            invalid_retry_count: absurd ``retry:`` values the decoder ignored (a violation
                each, up to one reported; the verdict is unaffected).
        """
        violations = list(self._violations)
        if invalid_retry_count:
            violations.append(
                Violation(
                    kind=ViolationKind.INVALID_FIELD,
                    path="$[retry]",
                    expected=f"a retry delay of at most {MAX_RETRY_MS} ms",
                    got=f"{invalid_retry_count} absurd value(s), ignored",
                )
            )
        verdict = self.decided
        if verdict is None and not self._chunk_count and other_line_count:
            verdict = StreamVerdict.MALFORMED_CHUNK
            violations.append(
                Violation(
                    kind=ViolationKind.NOT_SSE,
                    path="$",
                    expected="SSE data lines",
                    got=f"{other_line_count} other lines",
                )
            )
        if verdict is None:
            verdict = StreamVerdict.CLOSED if closed else self._ending(stalled, dropped)
        missing_usage = (
            self._expect_usage
            and self._usage is None
            and self._finish_reason is not None
            and verdict is not StreamVerdict.CLOSED
        )
        if missing_usage:
            violations.append(_MISSING_USAGE)
        return StreamResult(
            verdict=verdict,
            content="".join(self._content),
            reasoning_content="".join(self._reasoning),
            refusal="".join(self._refusal),
            tool_calls=tuple(draft.build(index) for index, draft in sorted(self._tools.items())),
            finish_reason=self._finish_reason,
            usage=self._usage,
            model=self._model,
            id=self._id,
            created=self._created,
            system_fingerprint=self._fingerprint,
            chunk_count=self._chunk_count,
            ping_count=ping_count + self._blank_count,
            first_token_at=self._first_token_at,
            done_seen=self._done,
            missing_usage=missing_usage,
            error=self._error,
            violations=tuple(violations),
        )

    def _ending(self, stalled: bool, dropped: bool) -> StreamVerdict:
        if stalled:
            return StreamVerdict.STALLED
        if self._finish_reason is None:
            return StreamVerdict.DROPPED if dropped else StreamVerdict.CUT
        if not self._require_done:
            return StreamVerdict.COMPLETE  # the answer had ended; what followed is not owed
        return StreamVerdict.DROPPED if dropped else StreamVerdict.NO_DONE


_MISSING_USAGE = Violation(
    kind=ViolationKind.MISSING_USAGE, path="$", expected="a usage chunk", got="none"
)


# ---------------------------------------------------------------------- bytes in


#: A deferring parser takes its held reads in one pass once this many are held...
HOLD_READS = 32
#: ...or at once after a read of this many bytes or more (held reads stay small).
HOLD_READ_BYTES = 16 * 1024
#: The raw windows a parser keeps for shape fingerprints (``windows=True``): the first this
#: many bytes of the stream, and its last this many to twice this many.
WINDOW_BYTES = 4096
_TWO_WINDOWS = 2 * WINDOW_BYTES
#: Reads a raw window keeps as pieces before they are joined into one (a stream of tiny reads).
_MAX_PIECES = 64


class StreamParser:
    """SSE decoding and assembly in one object, fed raw bytes by the transport.

    ``feed(data, now)`` as bytes arrive (``now``: a monotonic timestamp, used for the first
    token moment), then ``close(now)`` at the end of the body (``close(now, dropped=True)``
    when reading it failed), or ``stall()`` when the caller's idle limit passes.
    ``decided`` tells early whether the stream has already failed (in-band error, malformed
    chunk) so the caller can stop reading.

    Args:
        contract: see :class:`StreamAssembler`.
        expect_usage: see :class:`StreamAssembler`.
        clock: read for ``now`` when ``feed`` is given none, as long as the first token
            has not arrived (after it, no moment is needed).
        defer: once the first token has arrived, hold the reads fed and decode them in one
            pass every :data:`HOLD_READS` reads (at once after a read of
            :data:`HOLD_READ_BYTES` or more; and before anything is read from the parser,
            and at ``close``), which costs a stream less than a pass per read. Results are
            the same whatever is held. Reading :attr:`assembler` (a reader of every delta)
            ends deferring.
        windows: keep the stream's first and last raw bytes (:meth:`raw_windows`).
    """

    __slots__ = (
        "_assembler",
        "_clock",
        "_decoder",
        "_defer",
        "_head",
        "_head_size",
        "_held",
        "_holding",
        "_result",
        "_tail",
        "_tail_size",
        "_tap",
        "_windows",
        "bytes_fed",
    )

    def __init__(
        self,
        *,
        contract: Contract | None = None,
        expect_usage: bool | None = None,
        clock: Callable[[], float] | None = None,
        defer: bool = False,
        windows: bool = False,
    ):
        self._decoder = SSEDecoder()
        self._assembler = StreamAssembler(contract=contract, expect_usage=expect_usage)
        self._result: StreamResult | None = None
        self._clock = clock
        self._defer = defer
        self._holding = False  # deferring, and the first token has arrived
        self._held: list[bytes] = []
        self._windows = windows
        # The raw windows as the reads themselves (no copy of the stream): the first reads
        # up to a window, and the last ones covering at least two windows.
        self._head: list[bytes] = []
        self._head_size = 0
        self._tail: list[bytes] = []
        self._tail_size = 0
        #: Bytes fed so far (held ones included once taken: read it after :meth:`close`).
        self.bytes_fed = 0
        self._tap: list[bytes] | None = None

    def tap(self) -> list[bytes]:
        """From now on, also keep the data payload of every event the assembler takes as a
        good chunk, in order, in the list returned (the caller drains it as it likes), as
        UTF-8 bytes: as they came (a payload that is no valid UTF-8 never is a good chunk,
        but for the general way's text, whose invalid bytes were replaced, encoded again).

        Left out: ``[DONE]`` and anything after it, blank keep-alives, every event the
        assembler rejected (a malformed chunk, an in-band error, a chunk cut by the end of
        the body), and anything after a malformed chunk or an in-band error (not assembled
        either: the stream failed there, whichever read brought what follows). A pass-through
        proxy (the gateway) forwards these payloads as they arrive instead of decoding the
        bytes a second time. Calling it again returns the same list.
        """
        if self._tap is None:
            self._tap = []
            self._take_held()  # a pass-through reader forwards each read as it comes
            self._defer = self._holding = False
        return self._tap

    def _push_tapped(self, data: str, now: float | None, event: str, final: bool) -> None:
        assembler = self._assembler
        if assembler._done:  # [DONE] seen: what follows is ignored, and never forwarded
            assembler._push(data, now, event, final)
            return
        if assembler._malformed or assembler._error is not None:
            # The stream failed there (``decided``): a pass-through reader stops at it, so the
            # events after it that came in the same read are neither forwarded nor assembled
            # (the partial answer a continuation starts from ends where the failure was).
            return
        rejected = assembler._rejected
        assembler._push(data, now, event, final)
        if assembler._rejected == rejected and not assembler._done and data and not data.isspace():
            self._tap.append(data.encode())  # type: ignore[union-attr]

    def feed(self, data: bytes, now: float | None = None) -> None:
        """Decode and assemble ``data``. Raises ``RuntimeError`` after :meth:`close`."""
        if self._holding:  # the steady state of a deferred stream: a reference kept
            held = self._held
            held.append(data)
            if len(held) >= HOLD_READS or len(data) >= HOLD_READ_BYTES:
                self._take_held()
            return
        if self._result is not None:
            raise RuntimeError("StreamParser.feed() called after close(); create a new parser")
        assembler = self._assembler
        if now is None and self._clock is not None and not assembler._first_token:
            now = self._clock()
        self.bytes_fed += len(data)
        if self._windows:
            self._keep_window(data)
        self._decode(data, now)
        if self._defer and assembler._first_token:
            self._holding = True

    def _push_tapped_payloads(self, payloads: list[bytes], now: float | None) -> None:
        """:meth:`_push_tapped` each plain ``data:`` payload (raw UTF-8 bytes), in order: the
        tapped hot path, with no :class:`SSEEvent` built in between.

        A payload the typed decoder takes is a good chunk (nothing to report): it is assembled
        as :meth:`StreamAssembler._push_payloads` does and tapped at once. Anything else goes
        through :meth:`_push_tapped` as text decoded with ``errors="replace"``, which gives it
        exactly the verdict and the tap it had on the general path. Several payloads are
        decoded in one call, up to what the last read of a stream ends with and the typed
        decoder refuses (:func:`_typed_run`).
        """
        assembler = self._assembler
        taken = self._tap
        assert taken is not None
        typed = (  # as _typed_state, inline: once per read
            assembler._typed_misses < _TYPED_MISSES
            and not assembler._done
            and not assembler._malformed
            and assembler._error is None
        )
        if typed and len(payloads) > 1:
            template = assembler._template
            if template is None and assembler._template_tries:  # as untapped
                template = assembler._learn_ahead(payloads)
                if template is not None and not payloads[0].startswith(template.prefix):
                    self._push_tapped_payloads(payloads[:1], now)
                    payloads = payloads[1:]
                    typed = _typed_state(assembler)
            if typed and template is not None:  # plain chunks, up to what ends a stream
                run = assembler._take_run(template, payloads, now)
                if run:
                    taken += payloads[:run]
                    payloads = payloads[run:]
                    if not payloads:
                        return
        if typed and len(payloads) > 1:
            run = _typed_run(payloads)
            if run > 1:
                chunks = decode_chunks(payloads[:run])
                if chunks is not None:  # held reads: all of them in one C call
                    assembler._typed_misses = 0
                    assembler._chunk_count += run
                    take = assembler._take_chunk
                    for held in chunks:
                        take(held, now)
                    taken += payloads[:run]
                    if assembler._template is None and assembler._template_tries and run > 2:
                        assembler._learn(payloads[run - 1])  # as untapped
                    payloads = payloads[run:]
        for raw in payloads:
            if typed and raw[:1] == b"{":
                if assembler._template is not None and assembler._take_plain(raw, now):
                    taken.append(raw)
                    continue
                if raw.find(_USAGE_OBJECT) >= 0:  # as untapped
                    if assembler._take_usage(raw, now):
                        taken.append(raw)
                        continue
                else:
                    chunk = decode_chunk(raw)
                    if chunk is not None:
                        if assembler._typed_misses:
                            assembler._typed_misses = 0
                        assembler._chunk_count += 1
                        assembler._take_chunk(chunk, now)
                        taken.append(raw)
                        if assembler._template is None and assembler._template_tries:
                            assembler._learn(raw)
                        continue
                assembler._typed_misses += 1
            self._push_tapped(raw.decode("utf-8", "replace"), now, "message", False)
            typed = _typed_state(assembler)

    def _decode(self, data: bytes, now: float | None) -> None:
        if self._tap is not None:
            decoder = self._decoder
            payloads = decoder._feed_fast(data)
            if payloads is not None:
                self._push_tapped_payloads(payloads, now)
                return
            for event in decoder._feed_general(data):
                self._push_tapped(event.data, now, event.event, False)
            return
        payloads = self._decoder._feed_fast(data)
        if payloads is None:
            push = self._assembler._push  # the hot path skips the keyword-only wrapper
            for event in self._decoder._feed_general(data):
                push(event.data, now, event.event, False)
            return
        # plain ``data:`` events: no SSEEvent built in between, no text decoded first
        self._assembler._push_payloads(payloads, now)

    def _take_held(self) -> None:
        """Decode the held bytes in one pass (the first token has arrived: no moment).

        When each held read is one whole event of the stream's template (the usual network
        read), their contents are taken without cutting the bytes into events first
        (:meth:`ChunkTemplate.reads`); anything else is decoded the usual way, to the same
        result."""
        held = self._held
        if not held:
            return
        data = held[0] if len(held) == 1 else b"".join(held)
        self.bytes_fed += len(data)
        if self._windows:
            self._keep_window(data)
        self._held = []
        assembler = self._assembler
        template = assembler._template
        if (
            template is not None
            and self._tap is None  # tapped (held before tap()): each payload kept, below
            and assembler._typed_misses < _TYPED_MISSES
            and not assembler._done
            and self._decoder._between_events()
        ):
            texts = template.reads(held, data)
            if texts is not None:
                assembler._take_contents(template, len(held), texts, None)
                return
        self._decode(data, None)

    def _keep_window(self, data: bytes) -> None:
        """Add ``data``, the last bytes counted in :attr:`bytes_fed`, to the raw windows: a
        reference to it, not a copy (the windows are read for the few calls fingerprinted;
        every stream would pay for copying its bytes)."""
        if type(data) is not bytes:  # a buffer its owner may change: keep what it holds now
            data = bytes(data)
        if self._head_size < WINDOW_BYTES:
            head = self._head
            head.append(data)
            self._head_size += len(data)
            if len(head) > _MAX_PIECES:  # a stream of tiny reads: one piece, not thousands
                self._head = [b"".join(head)]
        tail = self._tail
        tail.append(data)
        size = self._tail_size + len(data)
        # At least the last two windows, whatever the reads (``raw_windows`` cuts the tail
        # at the last multiple of the window at least a window back, never further back).
        while size - len(tail[0]) >= _TWO_WINDOWS:
            size -= len(tail[0])
            del tail[0]
        if len(tail) > _MAX_PIECES:  # one piece of the last two windows (what can be read)
            joined = b"".join(tail)[-_TWO_WINDOWS:]
            self._tail = [joined]
            size = len(joined)
        self._tail_size = size

    def raw_windows(self) -> tuple[bytes, bytes]:
        """The first :data:`WINDOW_BYTES` bytes fed, and the last ones from the last
        multiple of :data:`WINDOW_BYTES` at least :data:`WINDOW_BYTES` back (the whole
        stream up to twice the window; after that, 4 to 8 KiB, the same whichever reads
        brought them); two empty values without ``windows=True``."""
        self._take_held()
        fed = self.bytes_fed
        start = max(0, (fed // WINDOW_BYTES - 1) * WINDOW_BYTES)
        kept_from = fed - self._tail_size  # where the first kept read starts in the stream
        return b"".join(self._head)[:WINDOW_BYTES], b"".join(self._tail)[start - kept_from :]

    def close(
        self,
        now: float | None = None,
        *,
        stalled: bool = False,
        dropped: bool = False,
        closed: bool = False,
    ) -> StreamResult:
        """End of stream: flush and judge. Idempotent.

        ``stalled=True``: the caller's idle limit passed. ``dropped=True``: reading the body
        failed mid-way (a reset, an incomplete chunked body), as opposed to a clean close.
        ``closed=True``: the caller closed the body before its end (``StreamVerdict.CLOSED``
        unless a verdict was already certain).
        """
        if self._result is None:
            self._take_held()
            self._holding = False
            decoder = self._decoder
            for event in decoder.close():
                if self._tap is not None:
                    self._push_tapped(event.data, now, event.event, True)
                else:
                    self._assembler.push(event, now, final=True)
            self._result = self._assembler.result(
                stalled=stalled,
                dropped=dropped,
                closed=closed,
                ping_count=decoder.comment_count,
                other_line_count=decoder.other_line_count,
                invalid_retry_count=decoder.invalid_retry_count,
            )
        return self._result

    def stall(self, now: float | None = None) -> StreamResult:
        """The caller's idle limit passed: end the stream as stalled (unless it had ended)."""
        return self.close(now, stalled=True)

    def snapshot(self) -> StreamResult:
        """The stream so far, judged as if it ended now; the parser stays open."""
        if self._result is not None:
            return self._result
        self._take_held()
        decoder = self._decoder
        return self._assembler.result(
            ping_count=decoder.comment_count,
            other_line_count=decoder.other_line_count,
            invalid_retry_count=decoder.invalid_retry_count,
        )

    @property
    def result(self) -> StreamResult | None:
        """The final result once closed, else None."""
        return self._result

    @property
    def assembler(self) -> StreamAssembler:
        """The assembler the events are pushed into: a reader of the same stream (the client)
        reads what each chunk added from it, without decoding the bytes again. From now on
        every ``feed`` is decoded at once (no deferring), so the reader sees each read."""
        self._take_held()
        self._defer = self._holding = False
        return self._assembler

    @property
    def verdict(self) -> StreamVerdict | None:
        """The final verdict once closed; before that, a verdict already certain (see
        :attr:`StreamAssembler.decided`), else None."""
        if self._result is not None:
            return self._result.verdict
        self._take_held()
        return self._assembler.decided

    @property
    def chunk_count(self) -> int:
        """Data chunks taken so far."""
        self._take_held()
        return self._assembler.chunk_count

    @property
    def done_seen(self) -> bool:
        """True once ``data: [DONE]`` arrived."""
        self._take_held()
        return self._assembler.done_seen

    @property
    def first_token_at(self) -> float | None:
        """The ``now`` given with the first token-bearing delta."""
        return self._assembler.first_token_at

    @property
    def ping_count(self) -> int:
        """Keep-alive comment lines so far."""
        self._take_held()
        return self._decoder.comment_count


#: A usage member that is an object (the usage chunk): the typed decoder refuses it.
_USAGE_OBJECT = b'"usage":{'  # found with ``find``: ``in`` raises and clears a TypeError


def _typed_state(assembler: StreamAssembler) -> bool:
    """Whether the tapped fast path may try the typed decoder: it has not kept missing, and
    the stream has not ended (``[DONE]``) or failed (a malformed chunk, an in-band error)."""
    return (
        assembler._typed_misses < _TYPED_MISSES
        and not assembler._done
        and not assembler._malformed
        and assembler._error is None
    )


def _typed_run(payloads: list[bytes]) -> int:
    """How many leading payloads to decode in one call: all, but for what the last read of a
    stream ends with (``[DONE]``, the usage chunk), which would make that call fail (the
    rest then goes one by one). Only a choice of the call's size: results do not depend on
    it."""
    end = len(payloads)
    if payloads[end - 1][:1] != b"{":  # [DONE]
        end -= 1
    if end and payloads[end - 1].find(_USAGE_OBJECT) >= 0:
        end -= 1
    return end


def parse_stream(
    chunks: Iterable[bytes],
    *,
    contract: Contract | None = None,
    stalled: bool = False,
    dropped: bool = False,
    expect_usage: bool | None = None,
) -> StreamResult:
    """Parse a whole stream body given as byte chunks (any split) into a :class:`StreamResult`.

    ``stalled=True`` says the caller stopped reading because its idle limit passed;
    ``dropped=True`` that the connection failed before the body ended.
    Never raises for any input bytes.
    """
    parser = StreamParser(contract=contract, expect_usage=expect_usage)
    for chunk in chunks:
        parser.feed(chunk)
    return parser.close(stalled=stalled, dropped=dropped)
