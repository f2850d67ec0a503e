"""What a successful call returns, and what a stream yields along the way."""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import Struct

from chatcontract.exchange import Exchange
from chatcontract.failures import Failure
from chatcontract.policy import Decision
from chatcontract.redact import redact_text
from chatcontract.wire import ToolCall, Usage

from .errors import CallOutcome

__all__ = ["ChatResult", "StreamDelta", "ToolCallDelta"]


class ChatResult(Struct, frozen=True, kw_only=True):
    """A completed answer, the route that gave it, and every attempt it took.

    Example::

        result = client.complete([{"role": "user", "content": "Reply with exactly: pong"}])
        result.content, result.finish_reason, result.usage.total_tokens
        result.route, [(a.route, a.attempt, a.ok) for a in result.attempts]
    """

    content: str | None
    reasoning: str | None
    refusal: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    usage: Usage | None
    model: str | None  # as the response names it (often a dated snapshot)
    route: str  # "primary" or the fallback route's name
    requested_model: str  # the model the route asked for
    attempts: tuple[Exchange, ...]
    decisions: tuple[Decision, ...] = ()
    cost_usd: float | None = None
    outcome: CallOutcome = "success"
    #: Contract clauses the answer broke though it is complete (a ``finish_reason`` was seen
    #: and it is usable): a missing ``[DONE]``, missing or inconsistent usage, usage over
    #: ``max_tokens``. Recorded, not raised; the attempt's Exchange carries it to telemetry.
    violations: tuple[Failure, ...] = ()
    #: Redacted from ``repr``: the answer is the provider's text and may quote the key. Not
    #: shown, and not compared.
    secrets: Sequence[str] = ()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _SHOWN)
        return redact_text(f"ChatResult({shown})", self.secrets)

    def __eq__(self, other: object) -> bool:
        if type(other) is not ChatResult:
            return NotImplemented
        return _compared(self) == _compared(other)  # as tuples: a NaN equals itself

    def __hash__(self) -> int:
        return hash(_compared(self))

    @property
    def ok(self) -> bool:
        """Always True: failures raise ``CallFailedError`` instead of returning."""
        return self.outcome == "success"

    @property
    def retried(self) -> bool:
        """True when at least one attempt failed before this answer."""
        return len(self.attempts) > 1

    @property
    def fell_back(self) -> bool:
        """True when the answer came from a fallback route."""
        return self.route != "primary"


#: The fields ``repr`` shows and ``==`` compares (all but ``secrets``).
_SHOWN = tuple(name for name in ChatResult.__struct_fields__ if name != "secrets")


def _compared(result: ChatResult) -> tuple[object, ...]:
    return tuple(getattr(result, name) for name in _SHOWN)


class ToolCallDelta(Struct, frozen=True, kw_only=True, gc=False):
    """One tool-call fragment of a stream chunk (arguments arrive in pieces)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class StreamDelta(Struct, frozen=True, kw_only=True, gc=False):
    """What one stream chunk added to the answer (choice 0). Empty chunks are not yielded."""

    content: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.content or self.reasoning or self.tool_calls)
