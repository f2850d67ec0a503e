"""How response bytes reach the client: a pure plan of steps, then one small executor.

A plan is a tuple of ``Start`` / ``Chunk`` / ``Wait`` / ``Hangup`` steps computed from the
scenario's ``Delivery`` without any I/O, so each fault's timing and framing can be read (and
tested) as data.
``ScriptedResponse`` runs a plan against ASGI ``send`` and ``receive``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from chatcontract.simulator.connection import (
    PauseEnd,
    Release,
    drop_connection,
    pause,
    pause_with_pings,
)
from chatcontract.simulator.scenarios import Delivery

__all__ = [
    "DONE_EVENT",
    "PING_EVENT",
    "Chunk",
    "Hangup",
    "Plan",
    "ScriptedResponse",
    "Start",
    "Step",
    "Wait",
    "fault_index",
    "plan_body",
    "plan_stream",
]

RawHeaders = list[tuple[bytes, bytes]]

DONE_EVENT = b"data: [DONE]\n\n"
PING_EVENT = b": PING\n\n"


@dataclass(frozen=True, slots=True)
class Start:
    """Send the status line and headers."""

    status: int
    headers: RawHeaders


@dataclass(frozen=True, slots=True)
class Chunk:
    """Send body bytes; ``more=False`` ends the response."""

    data: bytes
    more: bool = True


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait ``seconds``; with ``pings`` send SSE keep-alive comments during long waits."""

    seconds: float
    pings: bool = False


@dataclass(frozen=True, slots=True)
class Hangup:
    """Close the connection, whatever was sent so far."""


Step = Start | Chunk | Wait | Hangup
Plan = tuple[Step, ...]

_END = Chunk(b"", more=False)


def _half(count: int) -> int:
    return max(1, count // 2)


# --- streams: ``events`` are complete ``data: ...\n\n`` chunk events, without [DONE] -------------
# ``at`` is the index in ``events`` where the fault happens (events[0] is the role chunk, so
# ``at = 1 + N`` is "after N content tokens"): a cut keeps ``events[:at]``, a stall waits
# before ``events[at]``, a malformed event replaces ``events[at]``, an in-band error follows
# ``events[:at]``.

StreamPlanner = Callable[[Start, Sequence[bytes], float, bytes, int], Plan]


def _stream_normal(
    start: Start, events: Sequence[bytes], delay: float, error: bytes, at: int
) -> Plan:
    return (start, *(Chunk(e) for e in events), Chunk(DONE_EVENT), _END)


def _stream_no_done(
    start: Start, events: Sequence[bytes], delay: float, error: bytes, at: int
) -> Plan:
    return (start, *(Chunk(e) for e in events), _END)


def _stream_slow(
    start: Start, events: Sequence[bytes], delay: float, error: bytes, at: int
) -> Plan:
    gap = delay / (len(events) + 1)
    steps: list[Step] = [start]
    for event in (*events, DONE_EVENT):
        steps += [Wait(gap, pings=True), Chunk(event)]
    return (*steps, _END)


def _stream_slow_first_token(
    start: Start, events: Sequence[bytes], delay: float, error: bytes, at: int
) -> Plan:
    first, rest = events[:1], events[1:]
    return (
        start,
        *(Chunk(e) for e in first),
        Wait(delay, pings=True),
        *(Chunk(e) for e in rest),
        Chunk(DONE_EVENT),
        _END,
    )


def _stream_stall(
    start: Start, events: Sequence[bytes], delay: float, error: bytes, at: int
) -> Plan:
    return (
        start,
        *(Chunk(e) for e in events[:at]),
        Wait(delay),
        *(Chunk(e) for e in events[at:]),
        Chunk(DONE_EVENT),
        _END,
    )


def _stream_cut(start: Start, events: Sequence[bytes], delay: float, error: bytes, at: int) -> Plan:
    return (start, *(Chunk(e) for e in events[:at]), Hangup())


def _stream_malformed(
    start: Start, events: Sequence[bytes], delay: float, error: bytes, at: int
) -> Plan:
    broken_at = min(at, len(events) - 1)
    broken = events[broken_at]
    mangled = broken[: max(len(b"data: {"), len(broken) // 2)] + b"\n\n"
    steps = [Chunk(mangled if i == broken_at else e) for i, e in enumerate(events)]
    return (start, *steps, Chunk(DONE_EVENT), _END)


def _stream_inband_error(
    start: Start, events: Sequence[bytes], delay: float, error: bytes, at: int
) -> Plan:
    return (start, *(Chunk(e) for e in events[:at]), Chunk(error), Chunk(DONE_EVENT), _END)


_STREAM_PLANNERS: Mapping[Delivery, StreamPlanner] = {
    Delivery.NORMAL: _stream_normal,
    Delivery.NO_DONE: _stream_no_done,
    Delivery.SLOW: _stream_slow,
    Delivery.SLOW_FIRST_TOKEN: _stream_slow_first_token,
    Delivery.STALL: _stream_stall,
    Delivery.CUT: _stream_cut,
    Delivery.MALFORMED: _stream_malformed,
    Delivery.INBAND_ERROR: _stream_inband_error,
}

# Where each fault happens when the request names no token count.
_DEFAULT_AT: Mapping[Delivery, Callable[[int], int]] = {
    Delivery.INBAND_ERROR: lambda count: min(2, count),
}


def fault_index(delivery: Delivery, count: int, after_tokens: int | None) -> int:
    """The index in ``count`` events where ``delivery``'s fault happens.

    After ``after_tokens`` content tokens (the role chunk comes first) when given, else half
    way through (an in-band error: after the first token); never past the last event.
    """
    if after_tokens is not None:
        return max(1, min(1 + after_tokens, count))
    default = _DEFAULT_AT.get(delivery)
    return default(count) if default is not None else _half(count)


def plan_stream(
    delivery: Delivery,
    *,
    headers: RawHeaders,
    events: Sequence[bytes],
    delay_s: float,
    error_event: bytes,
    after_tokens: int | None = None,
) -> Plan:
    """The steps of a ``text/event-stream`` answer for ``delivery``.

    ``events`` must hold at least the role chunk; ``error_event`` is the in-band error event;
    ``after_tokens`` places a cut, stall, malformed event or in-band error after that many
    content tokens (default: half way; see ``fault_index``).
    """
    if not events:
        raise ValueError("a stream plan needs at least one event")
    planner = _STREAM_PLANNERS.get(delivery)
    if planner is None:
        raise ValueError(f"delivery {delivery.value!r} has no stream plan")
    at = fault_index(delivery, len(events), after_tokens)
    return planner(Start(200, headers), events, delay_s, error_event, at)


# --- non-streaming bodies -----------------------------------------------------------------------

BodyPlanner = Callable[[Start, bytes, float], Plan]


def _body_delayed(start: Start, body: bytes, delay: float) -> Plan:
    return (Wait(delay), start, Chunk(body, more=False))


def _body_stall(start: Start, body: bytes, delay: float) -> Plan:
    half = len(body) // 2
    return (start, Chunk(body[:half]), Wait(delay), Chunk(body[half:], more=False))


def _body_cut(start: Start, body: bytes, delay: float) -> Plan:
    return (start, Chunk(body[: len(body) // 2]), Hangup())


def _body_no_response(start: Start, body: bytes, delay: float) -> Plan:
    return (Wait(delay), Hangup())


def _body_reset(start: Start, body: bytes, delay: float) -> Plan:
    return (Hangup(),)


_BODY_PLANNERS: Mapping[Delivery, BodyPlanner] = {
    Delivery.SLOW: _body_delayed,
    Delivery.SLOW_FIRST_TOKEN: _body_delayed,
    Delivery.STALL: _body_stall,
    Delivery.CUT: _body_cut,
    Delivery.NO_RESPONSE: _body_no_response,
    Delivery.RESET: _body_reset,
}

SCRIPTED_BODY_DELIVERIES = frozenset(_BODY_PLANNERS)


def plan_body(delivery: Delivery, *, start: Start, body: bytes, delay_s: float) -> Plan:
    """The steps of a non-streaming answer for a delivery that is not a plain response.

    ``start`` must already carry the ``content-length`` of the full ``body``.
    """
    planner = _BODY_PLANNERS.get(delivery)
    if planner is None:
        raise ValueError(f"delivery {delivery.value!r} is answered with a plain response")
    return planner(start, body, delay_s)


class ScriptedResponse(Response):
    """A response that plays a plan: waits, partial bodies, keep-alives and hang-ups.

    A wait ends early when the client disconnects (the plan stops, nothing more is sent) or when
    the server releases pending requests (the connection is closed at once).
    """

    def __init__(self, plan: Plan, *, release: Release, ping_interval_s: float) -> None:
        self.plan = plan
        self.release = release
        self.ping_interval_s = ping_interval_s
        self.background = None
        start = next((s for s in plan if isinstance(s, Start)), None)
        self.status_code = start.status if start else 0
        self.raw_headers = list(start.headers) if start else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def ping() -> None:
            await send({"type": "http.response.body", "body": PING_EVENT, "more_body": True})

        for step in self.plan:
            match step:
                case Start(status=status, headers=headers):
                    await send(
                        {"type": "http.response.start", "status": status, "headers": headers}
                    )
                case Chunk(data=data, more=more):
                    await send({"type": "http.response.body", "body": data, "more_body": more})
                case Wait(seconds=seconds, pings=pings):
                    if pings:
                        end = await pause_with_pings(
                            seconds,
                            interval=self.ping_interval_s,
                            ping=ping,
                            receive=receive,
                            release=self.release,
                        )
                    else:
                        end = await pause(seconds, receive=receive, release=self.release)
                    if end is PauseEnd.DISCONNECTED:
                        return
                    if end is PauseEnd.RELEASED:
                        await drop_connection(receive)
                        return
                case Hangup():
                    await drop_connection(receive)
                    return
