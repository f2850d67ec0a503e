"""What every check gets: the target, an instrumented client, and a way to send one request.

Every request the suite sends carries ``X-Request-Source: synthetic-contract-probe``, a
harmless fixed prompt (with a marker the redaction check looks for), and a small token limit.

Verdicts must not depend on check order: a negative check sends on a connection of its own
(``send_fresh``), so a server that drops its keep-alive after a bad request cannot turn the
next check's call into a reset, and a repeated call honours a 429's ``retry-after``
(``send_patiently``, bounded by the contract's ``retry_after_cap_ms`` and the run's wait
budget) instead of counting the limit as a broken answer.
"""

from __future__ import annotations

import contextlib
import copy
import ssl
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import msgspec
import orjson

from chatcontract.client._core import silence_of
from chatcontract.client._guard import WATCH_EXTENSION, AttemptWatch, GuardTransport
from chatcontract.client._shell import read_capped
from chatcontract.client._stream import StreamReader
from chatcontract.exchange import Exchange
from chatcontract.policy import parse_retry_after
from chatcontract.target import Target
from chatcontract.transport import ExchangeSink, InstrumentedTransport, install_backend
from chatcontract.transport.observer import MAX_BODY_BYTES
from chatcontract.wire import ErrorBody, parse_error_body

__all__ = ["SOURCE_HEADER", "Answer", "CheckContext", "Patient", "SuiteOptions", "read_kept"]

SOURCE_HEADER = ("X-Request-Source", "synthetic-contract-probe")

#: The simulator's per-request fault header: used only against the embedded simulator.
SCENARIO_HEADER = "X-Chatcontract-Scenario"
DELAY_HEADER = "X-Chatcontract-Delay-Ms"

CANARY_PROMPT = "Reply with exactly: pong"
CANARY_MAX_TOKENS = 16

#: Bounds of ``timeout_deadline_ms`` (the client_timeout check's deadline), in milliseconds.
MIN_DEADLINE_MS = 10.0
MAX_DEADLINE_MS = 60_000.0

#: The most a whole run waits for ``retry-after`` hints, in seconds (each wait is also capped
#: by the contract's ``policy.retry.retry_after_cap_ms``).
WAIT_BUDGET_S = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteOptions:
    """Knobs of one validation run."""

    canary_runs: int = 30
    latency_samples: int = 5
    allow_negative: bool = False
    only: tuple[str, ...] = ()
    timeout_deadline_ms: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.canary_runs <= 1000:
            raise ValueError("canary_runs must be between 1 and 1000")
        if not 1 <= self.latency_samples <= 100:
            raise ValueError("latency_samples must be between 1 and 100")
        deadline = self.timeout_deadline_ms
        if deadline is not None and not MIN_DEADLINE_MS <= deadline <= MAX_DEADLINE_MS:
            raise ValueError(
                f"timeout_deadline_ms must be between {MIN_DEADLINE_MS:g} and "
                f"{MAX_DEADLINE_MS:g} milliseconds"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """A call on a fresh connection: its Exchange and, for an error, the parsed error body
    (type and code as sent, message redacted) so a report can name what the server said."""

    exchange: Exchange
    error: ErrorBody | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Patient:
    """A call that honoured ``retry-after``: the last Exchange and the 429s seen on the way."""

    exchange: Exchange
    limited: tuple[Exchange, ...] = ()
    waited_s: float = 0.0


@dataclass(slots=True, kw_only=True)
class CheckContext:
    """Shared state of a run: target, client, every Exchange, results so far."""

    target: Target
    options: SuiteOptions
    client: httpx2.Client
    exchanges: list[Exchange]
    marker: str
    progress: Callable[[str, int, int], None] = lambda _id, _done, _total: None
    shared: dict[str, Any] = field(default_factory=dict)
    #: Makes the transport of a call on its own connection (``None``: the shared client's
    #: transport is reused, e.g. an in-process test transport that has no connections).
    fresh_transport: Callable[[], httpx2.BaseTransport] | None = None
    sleep: Callable[[float], None] = time.sleep
    wait_budget_s: float = WAIT_BUDGET_S

    @classmethod
    def open(
        cls,
        target: Target,
        options: SuiteOptions,
        *,
        progress: Callable[[str, int, int], None] | None = None,
        inner: httpx2.BaseTransport | None = None,
        sinks: Sequence[ExchangeSink] = (),
    ) -> CheckContext:
        exchanges: list[Exchange] = []
        every_sink = [exchanges.append, *sinks]
        # The contract's total budget bounds each call as a whole (headers dripped a byte at a
        # time included), not only each read.
        total_s = target.contract.policy.timeouts.total_ms / 1000
        if inner is None:
            inner = httpx2.HTTPTransport()
            install_backend(inner, is_async=False)
        # Under the observer, as in ChatClient: a stream's first-token and idle limits
        # (``_send_on`` gives each stream its ``AttemptWatch``).
        transport = InstrumentedTransport(
            contract=target.contract,
            sinks=every_sink,
            secrets=[target.secret],
            inner=GuardTransport(inner, owns_inner=True),
            total_timeout=total_s,
        )

        tls: list[ssl.SSLContext] = []  # built once: loading the trust store takes ~0.1 s

        def fresh_transport() -> httpx2.BaseTransport:
            # A new pool: the call opens its own connection and closes it afterwards.
            if not tls:
                tls.append(httpx2.create_ssl_context())
            network = httpx2.HTTPTransport(verify=tls[0])
            install_backend(network, is_async=False)
            return InstrumentedTransport(
                contract=target.contract,
                sinks=every_sink,
                secrets=[target.secret],
                inner=GuardTransport(network, owns_inner=True),
                total_timeout=total_s,
            )

        timeouts = target.contract.policy.timeouts
        client = httpx2.Client(
            transport=transport,
            timeout=httpx2.Timeout(timeouts.total_ms / 1000, connect=timeouts.connect_ms / 1000),
            follow_redirects=False,
        )
        return cls(
            target=target,
            options=options,
            client=client,
            exchanges=exchanges,
            marker=f"chatcontract-marker-{uuid.uuid4().hex[:12]}",
            progress=progress or (lambda _id, _done, _total: None),
            fresh_transport=fresh_transport if inner is None else None,
        )

    def close(self) -> None:
        self.client.close()

    # -- requests ---------------------------------------------------------------------------

    def fixture(self, **overrides: Any) -> dict[str, Any]:
        """The contract's minimal request with the target's model, a marker and a token cap."""
        body: dict[str, Any] = copy.deepcopy(dict(self.target.contract.request.fixture))
        body["model"] = self.target.model
        body.setdefault("messages", [{"role": "user", "content": CANARY_PROMPT}])
        # A system line carrying the run's marker: the redaction check proves no prompt text
        # leaked anywhere by searching for it.
        body["messages"] = [
            {"role": "system", "content": f"Synthetic contract probe {self.marker}."},
            *body["messages"],
        ]
        cap = self.target.contract.policy.probe.max_tokens
        for key in ("max_tokens", "max_completion_tokens"):
            if key in body:
                body[key] = min(int(body[key]), cap)
        if "max_tokens" not in body and "max_completion_tokens" not in body:
            body["max_tokens"] = CANARY_MAX_TOKENS
        body.update(overrides)
        return body

    def headers(
        self,
        *,
        auth: str | None = "contract",
        scenario: str | None = None,
        delay_ms: int | None = None,
    ) -> dict[str, str]:
        """Request headers: source marker, auth (``contract``, None to omit, or a value)."""
        headers = {SOURCE_HEADER[0]: SOURCE_HEADER[1], "Content-Type": "application/json"}
        if auth == "contract":
            headers.update(self.target.auth_headers())
        elif auth is not None:
            headers[self.target.contract.auth.header] = self.target.contract.auth.header_value(auth)
        if self.target.simulated:
            if scenario is None and self.target.scenario:
                scenario = self.target.scenario
            if scenario is not None:
                headers[SCENARIO_HEADER] = scenario
            if delay_ms is not None:
                headers[DELAY_HEADER] = str(delay_ms)
        return headers

    def stream_timeout(self) -> httpx2.Timeout:
        """A streamed request's timeouts, as ``ChatClient`` sets them: the head is waited for
        ``policy.timeouts.stream_read_ms`` (the first-byte and first-token limits, whichever
        is lower); the body's gaps are then bounded by the stream's ``AttemptWatch``
        (``_send_on``): the first-token limit until content starts, ``idle_ms`` after. So a
        stream that goes quiet longer than the contract allows fails here too, named for the
        limit that ran out, not a pass once it resumes within ``total_ms``."""
        timeouts = self.target.contract.policy.timeouts
        return httpx2.Timeout(
            timeouts.total_ms / 1000,
            connect=timeouts.connect_ms / 1000,
            read=timeouts.stream_read_ms / 1000,
        )

    def send(
        self,
        body: Mapping[str, Any] | None = None,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
    ) -> Exchange:
        """Send one request, read the whole response, and return its Exchange."""
        exchange, _body = self._send_on(self.client, body, content, headers, timeout)
        return exchange

    def send_fresh(
        self,
        body: Mapping[str, Any] | None = None,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request on a connection of its own (closed afterwards).

        A negative check uses it: whatever the server does with the connection after a bad
        request (a 500 and a dropped keep-alive) stays out of every other check.
        """
        if self.fresh_transport is None:
            client = self.client
        else:
            timeouts = self.target.contract.policy.timeouts
            client = httpx2.Client(
                transport=self.fresh_transport(),
                timeout=httpx2.Timeout(
                    timeouts.total_ms / 1000, connect=timeouts.connect_ms / 1000
                ),
                follow_redirects=False,
            )
        try:
            exchange, raw = self._send_on(client, body, content, headers, None)
        finally:
            if client is not self.client:
                client.close()
        error = None
        response = exchange.response
        rejected = exchange.failure is not None and exchange.failure.kind == "api_error"
        if response is not None and raw and (rejected or not 200 <= response.status < 300):
            error = parse_error_body(
                raw,
                content_type=response.content_type,
                request_id_pattern=self.target.contract.errors.request_id_pattern,
            )
        return Answer(exchange=exchange, error=error)

    def send_patiently(
        self, body: Mapping[str, Any] | None = None, *, headers: Mapping[str, str] | None = None
    ) -> Patient:
        """Send one request; on a 429 with a ``retry-after`` hint, wait and send it again.

        Each wait is capped by ``policy.retry.retry_after_cap_ms``; all waits of a run share
        ``wait_budget_s``; at most ``policy.retry.max_attempts`` sends (at least two). A 429
        without a usable hint is not retried. The caller reports the 429s as notes.
        """
        policy = self.target.contract.policy.retry
        limited: list[Exchange] = []
        waited = 0.0
        exchange = self.send(body, headers=headers)
        for _ in range(max(1, policy.max_attempts - 1)):
            hint = _retry_after(exchange)
            if hint is None:
                break
            wait = min(hint, policy.retry_after_cap_ms / 1000)
            if wait > self.wait_budget_s:
                break  # the run has waited enough: report the 429 rather than stall the suite
            limited.append(exchange)
            self.wait_budget_s -= wait
            waited += wait
            self.sleep(wait)
            exchange = self.send(body, headers=headers)
        return Patient(exchange=exchange, limited=tuple(limited), waited_s=waited)

    def _send_on(
        self,
        client: httpx2.Client,
        body: Mapping[str, Any] | None,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: httpx2.Timeout | None,
    ) -> tuple[Exchange, bytes]:
        count = len(self.exchanges)
        payload = content
        watch = None
        timeouts = self.target.contract.policy.timeouts
        if payload is None:
            body = dict(body if body is not None else self.fixture())
            payload = orjson.dumps(body)
            if timeout is None and body.get("stream") is True:
                timeout = self.stream_timeout()
                watch = AttemptWatch(
                    clock=time.monotonic,
                    budget_s=timeouts.total_ms / 1000,
                    first_token_s=timeouts.first_token_ms / 1000,
                    idle_s=timeouts.idle_ms / 1000,
                )
        request = client.build_request(
            self.target.contract.endpoint.method,
            self.target.contract.endpoint.url,
            content=payload,
            headers=dict(headers if headers is not None else self.headers()),
            timeout=timeout if timeout is not None else httpx2.USE_CLIENT_DEFAULT,
        )
        if watch is not None:
            request.extensions[WATCH_EXTENSION] = watch
        raw = b""
        with contextlib.suppress(httpx2.HTTPError):  # the transport recorded its classification
            raw = read_kept(client.send(request, stream=True), watch)
        if len(self.exchanges) == count:  # pragma: no cover - the transport always records
            raise RuntimeError("the instrumented transport recorded no Exchange")
        exchange = self.exchanges[-1]
        if watch is not None:  # a silent stream named for the limit that ran out, as ChatClient
            silence = silence_of(exchange, watch, timeouts)
            if silence is not None:
                exchange = msgspec.structs.replace(exchange, failure=silence)
                self.exchanges[-1] = exchange
        return exchange, raw


def read_kept(response: httpx2.Response, watch: AttemptWatch | None = None) -> bytes:
    """Read ``response`` through (so the transport's observer judges all of it) and close it;
    return its first ``MAX_BODY_BYTES`` and a little more, never more.

    A stream is read to its end (or the call's deadline), its bytes past the cap dropped; any
    other body is read no further than the cap (the observer fails a 2xx body above it,
    ``parser/contract/body_too_large``), as ``ChatClient`` reads one. ``Response.read()``
    would hold everything a server sends without end before the deadline: about 1.3 GB in
    5 s on loopback.

    ``watch``: the stream's limits (``AttemptWatch``), told as each piece passes whether
    content started and data still flows, as ``ChatClient``'s reader tells it.
    """
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        return read_capped(response)  # as ChatClient reads a whole answer
    reader = None if watch is None else StreamReader.of(response.extensions)
    pieces: list[bytes] = []
    size = 0
    try:
        for piece in response.iter_bytes():
            if reader is not None and watch is not None:
                reader.forward(watch)
            if size <= MAX_BODY_BYTES:
                pieces.append(piece)
            size += len(piece)
    finally:
        response.close()
    return b"".join(pieces)


def _retry_after(exchange: Exchange) -> float | None:
    """Seconds a rate-limited answer asks to wait; ``None`` for anything else or no hint."""
    failure, response = exchange.failure, exchange.response
    if failure is None or failure.category != "rate_limit" or response is None:
        return None
    return parse_retry_after(response.rate_limit_headers, now=time.time())
