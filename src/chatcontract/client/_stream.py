"""Sans-IO stream reading for the clients: bytes in, caller-facing deltas out.

One ``SSEDecoder`` and one ``StreamAssembler`` per attempt: the assembler judges completeness
(the same verdicts the transport's Exchange gets), and what each decoded event added to the
assembled answer is the ``StreamDelta`` the caller sees. The text of a delta is read back
from the assembler, never parsed a second time, so what the caller received is always the
result's ``content`` (and ``reasoning_content``), whatever the bytes and however they were
split. Written once; both client shells feed it.
"""

from __future__ import annotations

from typing import Any

import orjson

from chatcontract.contract import Contract
from chatcontract.wire import SSEDecoder, SSEEvent, StreamAssembler, StreamResult, StreamVerdict

from .result import StreamDelta, ToolCallDelta

__all__ = ["EARLY_STOP", "StreamReader", "tool_call_deltas_of"]

#: Verdicts certain before the end: the client stops reading at once.
EARLY_STOP = frozenset({StreamVerdict.INBAND_ERROR, StreamVerdict.MALFORMED_CHUNK})


def _choice_zero(doc: dict[str, Any]) -> dict[str, Any] | None:
    choices = doc.get("choices")
    if type(choices) is not list:
        return None
    for position, choice in enumerate(choices):
        if type(choice) is dict:
            index = choice.get("index", position)
            if type(index) is int and index == 0:
                return choice
    return None


def _tool_call_deltas(calls: object) -> tuple[ToolCallDelta, ...]:
    if type(calls) is not list:
        return ()
    out = []
    for position, call in enumerate(calls):
        if type(call) is not dict:
            continue
        index = call.get("index", position)
        function = call.get("function")
        function = function if type(function) is dict else {}
        call_id, name, arguments = call.get("id"), function.get("name"), function.get("arguments")
        out.append(
            ToolCallDelta(
                index=index if type(index) is int else position,
                id=call_id if type(call_id) is str else None,
                name=name if type(name) is str else None,
                arguments=arguments if type(arguments) is str else "",
            )
        )
    return tuple(out)


def tool_call_deltas_of(event: SSEEvent) -> tuple[ToolCallDelta, ...]:
    """The tool-call fragments one event adds to choice 0 (none for keep-alives, errors,
    ``[DONE]`` and chunks without ``tool_calls``)."""
    if event.event == "error" or event.data[:1] != "{" or "tool_calls" not in event.data:
        return ()
    try:
        doc = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return ()
    if type(doc) is not dict or "error" in doc:
        return ()
    choice = _choice_zero(doc)
    delta = None if choice is None else choice.get("delta")
    return _tool_call_deltas(delta.get("tool_calls")) if type(delta) is dict else ()


class StreamReader:
    """Feeds one attempt's body bytes; returns the deltas to hand to the caller.

    ``feed`` as bytes arrive, then ``flush`` once at the end of the body (it delivers an
    event that lost its final blank line), then ``close`` for the verdict.

    Args:
        contract: completeness rules (``streaming.require_done`` / ``include_usage``).
        expect_usage: whether this request asked for a usage chunk.
    """

    __slots__ = ("_assembler", "_decoder", "_flushed", "_result", "delivered")

    def __init__(self, *, contract: Contract, expect_usage: bool) -> None:
        self._decoder = SSEDecoder()
        self._assembler = StreamAssembler(contract=contract, expect_usage=expect_usage)
        self._result: StreamResult | None = None
        self._flushed = False
        self.delivered = False  # set by the shell once a delta reached the caller

    def feed(self, data: bytes, now: float) -> list[StreamDelta]:
        """Take body bytes; returns the non-empty deltas they complete."""
        return self._deliver(self._decoder.feed(data), now, final=False)

    def flush(self, now: float | None = None) -> list[StreamDelta]:
        """The body ended (or reading stopped): the deltas of what the decoder still held,
        an unterminated last event included. Later calls return nothing."""
        if self._flushed or self._result is not None:
            return []
        self._flushed = True
        return self._deliver(self._decoder.close(), now, final=True)

    def _deliver(
        self, events: list[SSEEvent], now: float | None, *, final: bool
    ) -> list[StreamDelta]:
        deltas = []
        assembler = self._assembler
        for event in events:
            if assembler.done_seen:  # reported by the assembler, never delivered
                assembler.push(event, now, final=final)
                continue
            mark = assembler.text_mark()
            assembler.push(event, now, final=final)
            content, reasoning = assembler.text_since(mark)
            calls = tool_call_deltas_of(event)
            if content or reasoning or calls:
                deltas.append(StreamDelta(content=content, reasoning=reasoning, tool_calls=calls))
        return deltas

    @property
    def early_verdict(self) -> StreamVerdict | None:
        """A failing verdict already certain (in-band error, malformed chunk), else None."""
        verdict = self._assembler.decided
        return verdict if verdict in EARLY_STOP else None

    def close(self, now: float | None = None, *, stalled: bool = False) -> StreamResult:
        """The attempt's stream as assembled; idempotent. Flushes first if :meth:`flush`
        was not called (what it would have delivered is then in the result only)."""
        if self._result is None:
            self.flush(now)
            decoder = self._decoder
            self._result = self._assembler.result(
                stalled=stalled,
                ping_count=decoder.comment_count,
                other_line_count=decoder.other_line_count,
                invalid_retry_count=decoder.invalid_retry_count,
            )
        return self._result
