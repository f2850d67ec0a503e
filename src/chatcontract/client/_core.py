"""What both client shells share: configuration, call preparation, request building, and
turning what an attempt's request and response handed back into its outcome. No sockets here:
the shells only do the I/O calls.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace as replace_dataclass
from typing import Any, Self, TypedDict

import httpx2
from msgspec import Struct, field
from msgspec.structs import replace

from chatcontract.contract import Contract, Timeouts
from chatcontract.exchange import Exchange, RequestFacts, Timings
from chatcontract.failures import (
    DeadlineExceeded,
    Failure,
    classify_exception,
    make_failure,
    silence_failure,
)
from chatcontract.policy import (
    BudgetGuard,
    Deadline,
    estimate_prompt_tokens,
    kill_switch_active,
)
from chatcontract.policy.breaker import Breakers
from chatcontract.policy.recovery import TOLERATED_CODES
from chatcontract.telemetry.events import CallLabels, ClientEvent, Telemetry, TelemetrySink
from chatcontract.transport import EXCHANGE_EXTENSION, ExchangeSink
from chatcontract.transport.observer import PARSED_EXTENSION, ParsedBody
from chatcontract.wire import Completion, parse_completion
from chatcontract.wire.request import request_errors, requested_max_tokens

from ._guard import WATCH_EXTENSION, AttemptWatch
from ._plan import AttemptOutcome, CallPlan, Fail, Finish, Send, Step, Wait, attempt_outcome
from ._request import encode_json
from ._routes import Route, build_routes
from ._stream import StreamReader, no_stream
from .errors import NonRetryableError
from .result import ChatResult

__all__ = [
    "TRANSPORT_ERRORS",
    "ClientCore",
    "Observing",
    "PlanSteps",
    "PreparedCall",
    "silence_of",
]

#: What sending or reading may raise that the transport has already recorded as an Exchange.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    httpx2.TransportError,
    DeadlineExceeded,
    OSError,
)

# Parameters a caller may not pass through ``**params``, and what to do instead.
_RESERVED: Mapping[str, str] = {
    "model": "choose the model per client: ChatClient.from_contract(..., model=...)",
    "stream": "call stream() for a streamed answer, complete() otherwise",
}


class Observing(TypedDict):
    """The instrumented transport's arguments every route of a client shares."""

    contract: Contract
    sinks: tuple[ExchangeSink, ...]
    secrets: tuple[str, ...]
    capture_content: bool
    shape_sample_rate: float


class PreparedCall(Struct, frozen=True, kw_only=True):
    """One call, checked and planned: the body per route, headers, and the plan.

    ``encoded``: the body's JSON bytes by model, encoded once per call (a retry on the same
    model sends the same bytes); a caller holding the very body already (the gateway, when
    the client's body needs no change) puts its bytes there."""

    plan: CallPlan
    params: Mapping[str, Any]
    messages: tuple[Any, ...]
    headers: Mapping[str, str]
    stream: bool
    include_usage: bool
    encoded: dict[str, bytes] = field(default_factory=dict)

    def body(self, route: Route) -> dict[str, Any]:
        """The JSON body for ``route`` (its model)."""
        return {"model": route.model, "messages": list(self.messages), **self.params}

    def content(self, route: Route) -> bytes:
        """``body(route)`` as JSON bytes (``encode_json``), encoded once per model.

        Raises:
            NonRetryableError: the body has no JSON form (a NaN, an infinity or an object
                JSON cannot hold, in a field the request check does not type): not sent.
        """
        found = self.encoded.get(route.model)
        if found is None:
            try:
                found = self.encoded[route.model] = encode_json(self.body(route))
            except (TypeError, ValueError) as exc:
                failure = make_failure(
                    kind="semantic",
                    category="validation",
                    code="invalid_request",
                    message=f"the request body has no JSON form, not sent: {exc} "
                    "(JSON has no NaN or Infinity, and holds only strings, numbers, booleans, "
                    "null, arrays and objects)",
                )
                raise NonRetryableError(failure) from None
        return found

    def request_headers(self, route: Route) -> dict[str, str]:
        """The caller's extra headers, then the route's auth header."""
        return {**self.headers, route.auth_header: route.auth_value}


class PlanSteps:
    """A call's I/O steps in the plan's order, for a shell's loop: for a ``Wait`` the shell
    sleeps, for a ``Send`` it makes the attempt and hands its outcome to :meth:`report`.
    Iteration ends with :attr:`result` set, or raises the call's error.

    Example (the sync shell; the async one awaits the same two calls)::

        for step in (steps := PlanSteps(call.plan, call.plan.start())):
            if isinstance(step, Wait):
                sleep(step.seconds)
            else:
                steps.report(attempt(step))
        return steps.result
    """

    __slots__ = ("_next", "_plan", "_result", "_waited")

    def __init__(self, plan: CallPlan, first: Step) -> None:
        self._plan = plan
        self._next: Step | None = first  # None: waiting for report() (or, after a Wait, resume)
        self._waited = False
        self._result: ChatResult | None = None

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Wait | Send:
        step = self._plan.resume() if self._waited else self._next
        self._waited = False
        if step is None:
            raise RuntimeError("report() the outcome of the attempt before the next step")
        if isinstance(step, Finish):
            self._result = step.result
            raise StopIteration
        if isinstance(step, Fail):
            raise step.error
        self._next = None
        self._waited = isinstance(step, Wait)  # the plan resumes once the shell has slept
        return step

    def report(self, outcome: AttemptOutcome) -> None:
        """The outcome of the attempt the last ``Send`` asked for."""
        self._next = self._plan.on_outcome(outcome)

    @property
    def result(self) -> ChatResult:
        """The call's result, once iteration ended."""
        if self._result is None:
            raise RuntimeError("the call has not finished")
        return self._result


class ClientCore:
    """Configuration shared by ``ChatClient`` and ``AsyncChatClient``."""

    def __init__(
        self,
        contract: Contract,
        *,
        model: str | None,
        environ: Mapping[str, str] | None,
        telemetry_sinks: Sequence[TelemetrySink],
        clock: Callable[[], float],
        rng: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.contract = contract
        self._environ = environ
        self.routes = build_routes(contract, model=model, environ=self.environ)
        self.secrets = tuple(dict.fromkeys(route.secret for route in self.routes))
        self.clock = clock
        self.rng = rng
        self.wall_clock = wall_clock
        self.guard = BudgetGuard(contract.policy.caps, contract.policy.prices, clock=clock)
        #: One circuit breaker per route, shared by every call of this client.
        self.breakers = Breakers(
            contract.policy.breaker, clock=clock, counted=contract.errors.retryable
        )
        labels = CallLabels(provider=contract.provider, endpoint=contract.endpoint.path)
        self.telemetry = Telemetry(tuple(telemetry_sinks), labels) if telemetry_sinks else None
        # Each attempt's limits in seconds, worked out once (the contract is frozen).
        timeouts = contract.policy.timeouts
        self._first_token_s = timeouts.first_token_ms / 1000.0
        self._idle_s = timeouts.idle_ms / 1000.0
        self._connect_s = timeouts.connect_ms / 1000.0
        self._read_s = timeouts.first_byte_ms / 1000.0
        self._stream_read_s = timeouts.stream_read_ms / 1000.0

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment given at construction, else the live ``os.environ``."""
        return os.environ if self._environ is None else self._environ

    def transport_sinks(self) -> tuple[ExchangeSink, ...]:
        """Sinks for every route's instrumented transport (the attempt's own Exchange comes
        back with its request, in ``extensions["chatcontract.exchange"]``).

        A timed-out attempt is held back: which limit ran out (first byte, first token, idle)
        is the client's to say (``exchange_of``), so its sinks get it from there, classified
        once as the result reports it, never the transport's ``read_timeout`` beside a
        result's ``first_byte_timeout``."""
        return () if self.telemetry is None else (self._transport_exchange,)

    def _transport_exchange(self, exchange: Exchange) -> None:
        if self.telemetry is not None and not _client_classified(exchange):
            self.telemetry.exchange(exchange)

    def _emit_exchange(self, exchange: Exchange) -> None:
        if self.telemetry is not None:
            self.telemetry.exchange(exchange)

    def observing(self, capture_content: bool, shape_sample_rate: float = 1.0) -> Observing:
        """What each route's instrumented transport is built with (besides its inner one);
        ``shape_sample_rate``: the fraction of successful calls whose shapes are fingerprinted
        (failures always are)."""
        return Observing(
            contract=self.contract,
            sinks=self.transport_sinks(),
            secrets=self.secrets,
            capture_content=capture_content,
            shape_sample_rate=shape_sample_rate,
        )

    def emit(self, event: ClientEvent) -> None:
        """Hand a client decision to the telemetry sinks, if any."""
        if self.telemetry is not None:
            self.telemetry.event(event)

    # -- preparing a call ----------------------------------------------------------------

    def prepare(
        self,
        messages: Sequence[Any],
        params: Mapping[str, Any],
        *,
        stream: bool,
        deadline_s: float | None,
        headers: Mapping[str, str] | None,
        accepts_restart: bool = False,
        routes: Sequence[Route] | None = None,
        kill_switch: bool = False,
    ) -> PreparedCall:
        """Check the request, then plan the call. Raises ``NonRetryableError`` (nothing sent)
        for a request the contract says is malformed, ``TypeError`` for a reserved parameter.

        ``routes``: this call's routes, first choice first (default: every route); the
        breakers order them as usual. ``kill_switch``: on for this call whatever the
        environment says (the gateway's admin switch); the contract's variable still counts.
        """
        if not _RESERVED.keys().isdisjoint(params):  # (one C pass; the loop only to raise)
            for name, instead in _RESERVED.items():
                if name in params:
                    raise TypeError(f"{name!r} is not a call parameter: {instead}")
        contract = self.contract
        body_params = dict(params)
        include_usage = False
        if stream:
            body_params["stream"] = True
            if contract.streaming.include_usage and "stream_options" not in body_params:
                body_params["stream_options"] = {"include_usage": True}
            options = body_params.get("stream_options")
            include_usage = (type(options) is dict or isinstance(options, Mapping)) and (
                options.get("include_usage") is True
            )
        call_routes = self.routes if routes is None else tuple(routes)
        if not call_routes:
            raise ValueError("a call needs at least one route")
        # The body the first route is sent (the others differ by their model only): only its
        # errors count here (the transport records the request's facts from what it sends).
        body = {"model": call_routes[0].model, "messages": messages, **body_params}
        errors = request_errors(body, contract=contract)
        if errors:
            shown = "; ".join(str(error) for error in errors[:3])
            more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
            failure = make_failure(
                kind="semantic",
                category="validation",
                code="invalid_request",
                message=f"the request breaks the contract, not sent: {shown}{more}",
                secrets=self.secrets,
            )
            raise NonRetryableError(failure, secrets=self.secrets)
        policy = contract.policy
        total_s = policy.timeouts.total_ms / 1000.0 if deadline_s is None else _seconds(deadline_s)
        plan_messages = tuple(messages)

        def body_for(route: Route) -> dict[str, Any]:
            return {"model": route.model, "messages": list(plan_messages), **body_params}

        switched = kill_switch_active(policy, self.environ)  # the contract's variable
        kill_switch = kill_switch or switched
        plan = CallPlan(
            routes=call_routes if kill_switch else self.ordered_routes(call_routes),
            policy=policy,
            errors=contract.errors,
            deadline=Deadline(total_s, clock=self.clock),
            rng=self.rng,
            wall_clock=self.wall_clock,
            guard=self.guard,
            prompt_tokens=estimate_prompt_tokens(plan_messages),
            max_tokens=requested_max_tokens(body),
            kill_switch=kill_switch,
            kill_switch_env=policy.kill_switch_env if switched else None,
            emit=self.emit,
            secrets=self.secrets,
            breakers=self.breakers,
            body_for=body_for,
            accepts_restart=accepts_restart,
        )
        return PreparedCall(
            plan=plan,
            params=body_params,
            messages=plan_messages,
            headers=_checked_headers(headers, call_routes) if headers else {},
            stream=stream,
            include_usage=include_usage,
        )

    def ordered_routes(self, routes: Sequence[Route] | None = None) -> tuple[Route, ...]:
        """The routes (default: all) in the order the breakers give for one call: an open
        route is tried after the others (never dropped), a half-open one gets its one trial
        call."""
        chosen = self.routes if routes is None else tuple(routes)
        if self.breakers.idle and (chosen is self.routes or len(chosen) < 2 or _distinct(chosen)):
            return chosen  # what the breakers would give (the contract's names are distinct)
        by_name = {route.name: route for route in chosen}
        return tuple(by_name[name] for name in self.breakers.order(list(by_name)))

    # -- one attempt ---------------------------------------------------------------------

    def watch(self, step: Send, *, stream: bool) -> AttemptWatch:
        """The attempt's deadline share and, for streams, its first-token and idle limits."""
        if stream:
            released = step.delivered_budget_s
            return AttemptWatch(
                clock=self.clock,
                budget_s=step.budget_s if released is None else released,
                first_token_s=self._first_token_s,
                idle_s=self._idle_s,
                token_budget_s=None if released is None else step.budget_s,
            )
        return AttemptWatch(clock=self.clock, budget_s=step.budget_s, first_token_s=None)

    def timeout(self, step: Send, *, stream: bool) -> httpx2.Timeout:
        """httpx2 timeouts for one attempt, each cut to the attempt's budget.

        Connect: ``connect_ms``. Read (each silent gap, the wait for the response head
        included): ``first_byte_ms``, and for streams no more than ``first_token_ms``.
        """
        return httpx2.Timeout(**self.timeouts(step, stream=stream))

    def timeouts(self, step: Send, *, stream: bool) -> dict[str, float]:
        """:meth:`timeout` as the request's ``timeout`` extension (``Timeout.as_dict()``)."""
        budget = step.budget_s
        read = self._stream_read_s if stream else self._read_s
        return {
            # ``min(limit, budget)``, without the call: the limit unless the budget is less.
            "connect": budget if budget < self._connect_s else self._connect_s,
            "read": budget if budget < read else read,
            "write": budget,
            "pool": budget,
        }

    def extensions(self, step: Send, watch: AttemptWatch) -> dict[str, Any]:
        """Request extensions: attempt and route for the Exchange, the attempt's deadline for
        the transport (it cuts every connect, write and read to the time left, the response
        head included), the watch for the guard."""
        return {
            "chatcontract": {
                "attempt": step.attempt,
                "route": step.route.name,
                # The whole budget once text may release the reserve: the watch keeps the
                # attempt to ``budget_s`` until its first token (``AttemptWatch``).
                "deadline_s": step.budget_s
                if watch.token_ends_at is None
                else step.delivered_budget_s,
            },
            WATCH_EXTENSION: watch,
        }

    def exchange_of(
        self,
        request: httpx2.Request,
        step: Send,
        error: BaseException | None,
        call: PreparedCall,
    ) -> Exchange:
        """The Exchange the transport handed back with ``request``; synthesised when it
        recorded none (an error raised before the request reached it)."""
        found = request.extensions.get(EXCHANGE_EXTENSION)
        if isinstance(found, Exchange):
            if not _client_classified(found):
                return found  # the transport's sinks already have it
            silence = self._silence(
                found, request.extensions.get(WATCH_EXTENSION), call.plan.deadline
            )
            exchange = found if silence is None else replace(found, failure=silence)
            self._emit_exchange(exchange)
            return exchange
        failure = (
            classify_exception(error, secrets=self.secrets)
            if error is not None
            else make_failure(
                kind="transport",
                category="network",
                code="no_exchange",
                message="the attempt ended without a recorded exchange",
                secrets=self.secrets,
            )
        )
        exchange = Exchange(
            request=RequestFacts(
                method="POST",
                url=step.route.url,
                model=step.route.model,
                message_count=len(call.messages),
                stream=call.stream,
                include_usage=call.include_usage,
            ),
            response=None,
            timings=Timings(),
            started_at=self.wall_clock(),
            attempt=step.attempt,
            route=step.route.name,
            failure=failure,
        )
        self._emit_exchange(exchange)  # the transport never saw it: no sink has it yet
        return exchange

    def _silence(self, exchange: Exchange, watch: object, deadline: Deadline) -> Failure | None:
        """:func:`silence_of` under this client's contract and the call's ``deadline``."""
        return silence_of(exchange, watch, self.contract.policy.timeouts, deadline)

    def answer_of(
        self, exchange: Exchange, body: bytes, parsed: ParsedBody | None = None
    ) -> Completion | None:
        """The parsed answer of a successful non-streamed attempt (or of one whose only
        failure may be tolerated at run time, see ``readable``), else None.

        ``parsed``: what the transport's observer left in the request's extensions (a
        :class:`~chatcontract.transport.observer.ParsedBody`): its result is taken when it is
        of this very body and contract, so the body is parsed once per attempt; else (a
        user-supplied transport, a body the observer kept only part of) it is parsed here."""
        if not readable(exchange):
            return None
        if parsed is not None:
            result = parsed.result_for(body, self.contract)
            if result is not None:
                return result.completion
        return parse_completion(body, contract=self.contract).completion

    def body_outcome(
        self,
        request: httpx2.Request,
        step: Send,
        call: PreparedCall,
        body: bytes,
        error: BaseException | None,
    ) -> AttemptOutcome:
        """An attempt whose answer was read whole (``complete()``, or a stream request that
        got no SSE body: its content, if any, is then delivered as one delta)."""
        exchange = self.exchange_of(request, step, error, call)
        found = request.extensions.get(PARSED_EXTENSION)
        parsed = found if isinstance(found, ParsedBody) else None
        answer = self.answer_of(exchange, body, parsed)
        if not call.stream:
            return attempt_outcome(exchange, answer, None, False)
        return attempt_outcome(
            exchange,
            answer,
            no_stream(self.contract, expect_usage=call.include_usage),
            answer is not None and bool(answer.content),
        )

    def stream_outcome(
        self,
        request: httpx2.Request,
        step: Send,
        call: PreparedCall,
        reader: StreamReader | None,
        error: BaseException | None,
    ) -> AttemptOutcome:
        """A streamed attempt once its response was closed (``reader`` None: sending failed)."""
        exchange = self.exchange_of(request, step, error, call)
        if reader is None:
            partial = no_stream(self.contract, expect_usage=call.include_usage)
            return attempt_outcome(exchange, None, partial, False)
        partial = reader.result
        answer = partial.as_completion() if readable(exchange) else None
        return attempt_outcome(exchange, answer, partial, reader.delivered)


def silence_of(
    exchange: Exchange, watch: object, timeouts: Timeouts, deadline: Deadline | None = None
) -> Failure | None:
    """The failure of a route that stayed silent past one of its limits (``policy.decide``
    sends it straight to the next route), built from which limit ran out (``watch``: the
    attempt's :class:`AttemptWatch`, if any) under ``timeouts``, or of a read that stalled
    after the first byte (its limit added to the message), or of an attempt whose share of
    the call ``deadline`` ran out while the call's own did not (the fallback reserve is left);
    None for any other outcome (the call deadline included). ``ChatClient``, the gateway and
    ``validate`` name a silence with it, so one server's silence has one name everywhere."""
    failure = exchange.failure
    if failure is None or failure.category != "timeout":
        return None
    own = watch if isinstance(watch, AttemptWatch) else None
    # Before its first token, a stream whose reserve is released once text flows has a
    # shorter share of the deadline than its transport's (``AttemptWatch.token_ends_at``).
    reserved = own is not None and own.token_ends_at is not None and not own.token_seen
    if (
        failure.code == "deadline"
        and deadline is not None
        and deadline.remaining() > _SHARE_SLACK_S
    ):
        return _share_ran_out(failure, before_token=reserved)
    fired = None if own is None else own.fired
    if fired == "first_token":
        return silence_failure("first_token", timeouts.first_token_ms)
    if fired == "idle":
        return silence_failure("idle", timeouts.idle_ms)
    if fired is not None:  # the attempt's deadline share: not a silence
        return None
    if reserved and failure.code == "read_timeout" and own is not None and own.reserve_passed():
        return _share_ran_out(failure)  # the head's wait, cut to that share
    if failure.code == "read_timeout":
        # Silent only when no byte came back: a head or body that stalled after its first
        # byte stays a ``read_timeout`` (the transport's message says which), with the
        # read limit it ran into.
        stream = exchange.request.stream
        if exchange.response is None and exchange.timings.ttfb_ms is None:
            # A stream's head waits no longer than ``stream_read_ms``: when that is the
            # first-token limit, it is the one that ran out (no byte, so no token).
            if stream and timeouts.first_token_ms < timeouts.first_byte_ms:
                return silence_failure("first_token", timeouts.first_token_ms)
            return silence_failure("first_byte", timeouts.first_byte_ms)
        limit_ms = timeouts.stream_read_ms if stream else timeouts.first_byte_ms
        return replace_dataclass(failure, message=f"{failure.message} ({limit_ms} ms)")
    if failure.code == "stream_stalled":  # the socket went quiet (the read timeout)
        started = isinstance(watch, AttemptWatch) and watch.token_seen
        if started:
            return silence_failure("idle", timeouts.stream_read_ms)
        return silence_failure("first_token", timeouts.stream_read_ms)
    return None


#: An HTTP header name (RFC 9110 ``token``).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: What no header value may hold (h11 refuses it when the request is sent).
_HEADER_VALUE_BREAK = re.compile(r"[\r\n\x00]")
#: Headers the client sets itself, per request.
_CLIENT_HEADERS = frozenset({"content-length", "transfer-encoding", "host"})


def _checked_headers(headers: object, routes: Sequence[Route]) -> dict[str, str]:
    """A call's extra ``headers``, checked before anything is sent: names and values HTTP
    can carry, none of the client's own (framing, the routes' auth headers).

    Raises:
        TypeError: not a mapping of strings to strings.
        ValueError: a name or value HTTP cannot carry, or a header the client sets itself
            (the message never shows a value: it may be a secret).
    """
    if not isinstance(headers, Mapping):
        raise TypeError(
            "headers must be a mapping of header names to values, e.g. "
            f"headers={{'x-request-id': 'abc'}}; got {type(headers).__name__}"
        )
    auth = {route.auth_header.lower() for route in routes}
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            shown = repr(name)[:60] if isinstance(name, str) else type(name).__name__
            raise ValueError(
                f"headers: {shown} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
            )
        if not isinstance(value, str) or _HEADER_VALUE_BREAK.search(value):
            raise ValueError(
                f"headers: the value of {name!r} must be text without line breaks or NUL "
                f"(got {type(value).__name__ if not isinstance(value, str) else 'a line break'})"
            )
        lowered = name.lower()
        if lowered in auth:
            raise ValueError(
                f"headers: {name!r} is the contract's auth header; the key comes from the "
                "route's environment variable (endpoint.auth), not from a call"
            )
        if lowered in _CLIENT_HEADERS:
            raise ValueError(f"headers: {name!r} is set by the client for each request")
        checked[name] = value
    return checked


#: The longest ``deadline_s`` a call takes: the longest ``policy.timeouts.total_ms``.
MAX_CALL_DEADLINE_S = 3_600.0


def _seconds(deadline_s: object) -> float:
    """A call's ``deadline_s``, checked: a number of seconds above 0, at most an hour.

    Raises:
        TypeError: not a number (a bool included).
        ValueError: not above 0, not finite or above ``MAX_CALL_DEADLINE_S``.
    """
    example = "e.g. deadline_s=30"
    if isinstance(deadline_s, bool) or not isinstance(deadline_s, int | float):
        raise TypeError(
            f"deadline_s must be a number of seconds ({example}), got {type(deadline_s).__name__}"
        )
    if not 0 < deadline_s <= MAX_CALL_DEADLINE_S:  # NaN fails this too
        raise ValueError(
            f"deadline_s must be a number of seconds above 0 and at most "
            f"{MAX_CALL_DEADLINE_S:g} (the longest policy.timeouts.total_ms), {example}; "
            f"got {deadline_s!r}"
        )
    return float(deadline_s)


#: How much of the call's deadline must be left for an attempt's deadline to be its share's.
_SHARE_SLACK_S = 0.05


def _share_ran_out(failure: Failure, *, before_token: bool = True) -> Failure:
    """The timeout of an attempt whose share of the call deadline (before its first token,
    for a stream keeping the reserve that long) ran out: the fallback reserve it kept is
    left for the next route."""
    when = " before its first token" if before_token else ""
    return make_failure(
        kind="transport",
        category="timeout",
        code="deadline",
        message=f"the attempt's share of the call deadline ran out{when} "
        "(the fallback reserve is left for the next route)",
        status=failure.status,
        request_id=failure.request_id,
    )


def _distinct(routes: tuple[Route, ...]) -> bool:
    """No two of ``routes`` share a name (``ordered_routes`` keeps one route per name)."""
    return len({route.name for route in routes}) == len(routes)


def _client_classified(exchange: Exchange) -> bool:
    """An attempt whose failure the client names itself (a timeout: which limit ran out)."""
    failure = exchange.failure
    return failure is not None and failure.category == "timeout"


def readable(exchange: Exchange) -> bool:
    """Whether an attempt's answer is read: a success, or a failure of the "complete but not
    as contracted" kind (``TOLERATED_CODES``) the plan may record as a violation instead."""
    failure = exchange.failure
    return failure is None or failure.code in TOLERATED_CODES


def default_wall_clock() -> float:
    """Epoch seconds (for ``retry-after`` HTTP dates)."""
    return time.time()
