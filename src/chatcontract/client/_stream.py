"""Sans-IO stream reading for the clients: bytes in, caller-facing deltas out.

One ``SSEDecoder`` and one ``StreamAssembler`` per attempt: the assembler judges completeness
(the same verdicts the transport's Exchange gets), and each decoded event is also turned into
the ``StreamDelta`` the caller sees. Written once; both client shells feed it.
"""

from __future__ import annotations

from typing import Any

import orjson

from chatcontract.contract import Contract
from chatcontract.wire import SSEDecoder, SSEEvent, StreamAssembler, StreamResult, StreamVerdict

from .result import StreamDelta, ToolCallDelta

__all__ = ["EARLY_STOP", "StreamReader", "delta_of"]

#: Verdicts certain before the end: the client stops reading at once.
EARLY_STOP = frozenset({StreamVerdict.INBAND_ERROR, StreamVerdict.MALFORMED_CHUNK})


def _choice_zero(doc: dict[str, Any]) -> dict[str, Any] | None:
    choices = doc.get("choices")
    if type(choices) is not list:
        return None
    for position, choice in enumerate(choices):
        if type(choice) is dict and choice.get("index", position) == 0:
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


def delta_of(event: SSEEvent) -> StreamDelta | None:
    """What one event adds to choice 0, or ``None`` (keep-alive, error, ``[DONE]``, no text)."""
    if event.event == "error" or event.data[:1] != "{":
        return None
    try:
        doc = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or "error" in doc:
        return None
    choice = _choice_zero(doc)
    if choice is None or type(choice.get("delta")) is not dict:
        return None
    delta: dict[str, Any] = choice["delta"]
    content, reasoning = delta.get("content"), delta.get("reasoning_content")
    result = StreamDelta(
        content=content if type(content) is str else "",
        reasoning=reasoning if type(reasoning) is str else "",
        tool_calls=_tool_call_deltas(delta.get("tool_calls")),
    )
    return result if result else None


class StreamReader:
    """Feeds one attempt's body bytes; returns the deltas to hand to the caller.

    Args:
        contract: completeness rules (``streaming.require_done`` / ``include_usage``).
        expect_usage: whether this request asked for a usage chunk.
    """

    __slots__ = ("_assembler", "_decoder", "_result", "delivered")

    def __init__(self, *, contract: Contract, expect_usage: bool) -> None:
        self._decoder = SSEDecoder()
        self._assembler = StreamAssembler(contract=contract, expect_usage=expect_usage)
        self._result: StreamResult | None = None
        self.delivered = False  # set by the shell once a delta reached the caller

    def feed(self, data: bytes, now: float) -> list[StreamDelta]:
        """Take body bytes; returns the non-empty deltas they complete."""
        deltas = []
        done = self._assembler.done_seen
        for event in self._decoder.feed(data):
            self._assembler.push(event, now)
            if done:
                continue  # events after [DONE] are reported by the assembler, not delivered
            done = self._assembler.done_seen
            delta = delta_of(event)
            if delta is not None:
                deltas.append(delta)
        return deltas

    @property
    def early_verdict(self) -> StreamVerdict | None:
        """A failing verdict already certain (in-band error, malformed chunk), else None."""
        verdict = self._assembler.decided
        return verdict if verdict in EARLY_STOP else None

    def close(self, now: float | None = None, *, stalled: bool = False) -> StreamResult:
        """The attempt's stream as assembled; idempotent."""
        if self._result is None:
            for event in self._decoder.close():
                self._assembler.push(event, now, final=True)
            self._result = self._assembler.result(
                stalled=stalled,
                ping_count=self._decoder.comment_count,
                other_line_count=self._decoder.other_line_count,
            )
        return self._result
