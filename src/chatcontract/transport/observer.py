"""The sans-IO core of the instrumented transports: one ``CallObserver`` per HTTP call.

The sync and async transports feed it the request, the response head, each body chunk as
it passes, and any exception; it times the phases, watches streams incrementally (first
token, completeness, in-band errors) without holding them, classifies the outcome and
builds the ``Exchange``. Written once; the two transports are thin shells around it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter, itemgetter
from typing import Any, Protocol

import msgspec
import orjson

from chatcontract.contract import Contract
from chatcontract.exchange import (
    Exchange,
    RequestFacts,
    ResponseFacts,
    Timings,
    response_is_clean,
)
from chatcontract.failures import (
    REQUEST_ID_HEADERS,
    DeadlineExceeded,
    Failure,
    Kind,
    classify_exception,
    classify_received,
    classify_stream,
    make_failure,
)
from chatcontract.redact import redact_text
from chatcontract.wire import (
    CompletionResult,
    Fingerprint,
    SSEDecoder,
    StreamParser,
    StreamVerdict,
    Usage,
    fingerprint_bytes,
    parse_completion,
    shape_fingerprint,
    union_of_shape_paths,
)

from ._coding import BodyDecoder, CodingError, codings_of, supported_codings
from ._httpx_seam import header_items
from ._timing import PhaseClock

__all__ = [
    "EXCHANGE_EXTENSION",
    "PARSED_EXTENSION",
    "STREAM_EXTENSION",
    "CallObserver",
    "ExchangeSink",
    "ParsedBody",
    "request_facts",
]

ExchangeSink = Callable[[Exchange], None]


class _Answer(Protocol):
    """What the response facts read of a parsed answer: a ``Completion`` or a ``StreamResult``."""

    @property
    def model(self) -> str | None: ...
    @property
    def id(self) -> str | None: ...
    @property
    def finish_reason(self) -> str | None: ...
    @property
    def usage(self) -> Usage | None: ...
    @property
    def content(self) -> str | None: ...


#: Bodies above this are counted but not kept for parsing (a completion is far smaller); a
#: 2xx body above it is ``parser/contract/body_too_large``, and ChatClient reads no further.
#: A compressed body is decoded no further than one byte past it (a decompression bomb costs
#: this much memory, not its decoded size).
MAX_BODY_BYTES = 8 * 1024 * 1024

#: The most decoded bytes a compressed stream is fed to its parser: past it, the stream is
#: ``parser/contract/body_too_large`` and nothing more of it is decoded (a 100-token answer is
#: a few KiB; an uncompressed stream has no such cap, as each byte of it crossed the network).
MAX_DECODED_STREAM_BYTES = 64 * 1024 * 1024

#: The most bytes of a mislabelled answer to a streamed request (a 2xx whose ``Content-Type``
#: is not ``text/event-stream``) read to tell an SSE stream from a JSON body by its first
#: bytes (:meth:`CallObserver.sniff`), as received and, for a coded body, as decoded. A body
#: still undecided past it (whitespace only, or coded data that decodes to nothing) is judged
#: as a body, as every mislabelled answer was before.
SNIFF_BYTES = 4096

_perf_counter = time.perf_counter  # one global lookup per chunk instead of two

# The request id headers, then a CDN trace id as the last resort for correlating a call.
_REQUEST_ID_HEADERS = (*REQUEST_ID_HEADERS, "cf-ray")
# ``llm_provider-retry-after``: LiteLLM's proxy passes the provider's retry-after on only
# under that name (``policy.backoff.parse_retry_after`` reads it).
_RATE_LIMIT_PREFIXES = ("x-ratelimit-", "retry-after", "ratelimit-", "llm_provider-retry-after")
#: The response headers the observer keeps (by lower-case name): what the Exchange records
#: (content type, request ids, rate limits) and the classifier reads. The others are never
#: decoded.
_KEPT_NAMES = frozenset(("content-type", "content-encoding", *_REQUEST_ID_HEADERS))
_REQUEST_ID_NAMES = frozenset(_REQUEST_ID_HEADERS)
_KEPT_RAW_NAMES = frozenset(name.encode() for name in _KEPT_NAMES)
_RAW_RATE_LIMIT_PREFIXES = tuple(prefix.encode() for prefix in _RATE_LIMIT_PREFIXES)


def request_facts(
    method: str,
    url: str,
    content: bytes,
    headers: Mapping[str, str],
    timeout: Mapping[str, Any] | None,
    *,
    fingerprint: bool = True,
) -> RequestFacts:
    """Shape-only facts of a request: never the prompt text, never the key.

    ``fingerprint=False`` leaves the shape fingerprint out (the costliest fact).
    """
    return _request_facts(
        method,
        _safe_url(url),
        content,
        headers.get("x-request-source") or None,
        _budget_ms(timeout) if timeout else None,
        fingerprint,
    )


def _request_facts(  # noqa: PLR0917 - the per-call path: positional, no keyword binding
    method: str,
    safe_url: str,
    content: bytes,
    source: str | None,
    budget: float | None,
    fingerprint: bool,
) -> RequestFacts:
    """``request_facts`` of a URL already made safe, a source and a budget already read.

    Without a fingerprint, only the fields read are decoded (``_TypedRequest``: the prompt
    text is skipped, never built); a body that decoder refuses (a type it does not expect, a
    body that is not a JSON object, invalid JSON) or one it could read differently from
    ``orjson`` (not valid UTF-8, a ``max_tokens`` beyond 64 bits) is read the general way,
    which gives the same facts. One difference is kept: ``orjson`` refuses a whole body for a
    number beyond a double's range anywhere in it, the typed decoder only where it reads.
    """
    if not fingerprint and content:
        try:
            typed = _decode_request(content)
        except _TYPED_ERRORS:
            typed = None
        if typed is not None and (content.isascii() or _is_utf8(content)):
            max_tokens = typed.max_completion_tokens
            if max_tokens is msgspec.UNSET:
                max_tokens = typed.max_tokens
            if max_tokens is None or _INT_MIN <= max_tokens <= _INT_MAX:
                messages = typed.messages
                roles: tuple[str, ...] = ()
                count = 0
                if messages is not None:
                    count = len(messages)
                    found = set(map(_role_of, messages))
                    found.discard(None)
                    roles = tuple(sorted(found))
                options = typed.stream_options
                return RequestFacts(
                    method=method,
                    url=safe_url,
                    model=typed.model,
                    message_count=count,
                    roles=roles,
                    stream=typed.stream is True,
                    include_usage=options is not None and options.include_usage is True,
                    max_tokens=max_tokens,
                    timeout_budget_ms=budget,
                    source=source,
                )
    return _general_facts(method, safe_url, content, source, budget, fingerprint)


def _general_facts(  # noqa: PLR0917 - positional, as ``_request_facts`` is
    method: str,
    safe_url: str,
    content: bytes,
    source: str | None,
    budget: float | None,
    fingerprint: bool,
) -> RequestFacts:
    """``_request_facts`` read from the whole document (``orjson``)."""
    doc: Any = None
    if content:
        try:
            doc = orjson.loads(content)
        except orjson.JSONDecodeError:
            doc = None
    if not isinstance(doc, dict):
        shape = None if doc is None or not fingerprint else _digest_of(doc)
        return RequestFacts(
            method=method,
            url=safe_url,
            timeout_budget_ms=budget,
            shape_fingerprint=shape,
            source=source,
        )
    messages = doc.get("messages")
    roles: tuple[str, ...] = ()
    count = 0
    if isinstance(messages, list):
        count = len(messages)
        roles = tuple(
            sorted(
                {
                    m["role"]
                    for m in messages
                    if isinstance(m, dict) and isinstance(m.get("role"), str)
                }
            )
        )
    options = doc.get("stream_options")
    max_tokens = doc.get("max_completion_tokens", doc.get("max_tokens"))
    model = doc.get("model")
    return RequestFacts(
        method=method,
        url=safe_url,
        model=model if isinstance(model, str) else None,
        message_count=count,
        roles=roles,
        stream=doc.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        max_tokens=(
            max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None
        ),
        timeout_budget_ms=budget,
        shape_fingerprint=_digest_of(doc) if fingerprint else None,
        source=source,
    )


class _TypedMessage(msgspec.Struct):
    role: str | None = None


class _TypedStreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class _TypedRequest(msgspec.Struct):
    """The request fields the facts read, typed as the general path keeps them (any other
    type fails the decode, and the body is read the general way)."""

    model: str | None = None
    messages: list[_TypedMessage] | None = None
    stream: bool | None = None
    stream_options: _TypedStreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | msgspec.UnsetType | None = msgspec.UNSET


_decode_request = msgspec.json.Decoder(_TypedRequest).decode
# RecursionError: nesting deeper than msgspec follows (orjson may still read it).
_TYPED_ERRORS = (msgspec.DecodeError, RecursionError)
_role_of = attrgetter("role")
# orjson reads a JSON integer beyond these as a float, which the facts do not keep.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def _is_utf8(content: bytes) -> bool:
    try:
        content.decode()
    except UnicodeDecodeError:
        return False
    return True


def _kept_headers_of(
    headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]],
) -> dict[str, str]:
    """The kept response headers (by lower-case name) of what ``on_response`` was given, read
    the public way (``on_response`` reads an ``httpx2.Headers``' own items first)."""
    raw = getattr(headers, "raw", None)  # httpx2.Headers: its raw bytes decode cheapest
    if raw is not None:  # raw header bytes: only the few kept are decoded
        return _kept_raw_headers(raw)
    if isinstance(headers, Mapping):
        return _kept_headers((k.lower(), v) for k, v in headers.items())
    return _kept_raw_headers(headers)


def _kept_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The kept headers of ``(lower-case name, value)`` pairs (a repeated one: its last value)."""
    return {
        name: value
        for name, value in pairs
        if name in _KEPT_NAMES or name.startswith(_RATE_LIMIT_PREFIXES)
    }


#: A head's kept items by its lower-case names (a server sends the same names call after
#: call): ``(name kept, index of its value)`` pairs, in the order ``_kept_raw_headers`` keeps.
_HEAD_PLANS: dict[tuple[bytes, ...], tuple[tuple[str, int], ...]] = {}
_MAX_HEAD_PLANS = 256
_LOWER_NAME = itemgetter(1)


def _kept_lowered_headers(items: list[tuple[bytes, bytes, bytes]]) -> dict[str, str]:
    """``_kept_raw_headers`` of ``(raw name, lower-case name, value)`` items (httpx2's).

    Raises ValueError or LookupError for items of another shape."""
    names = tuple(map(_LOWER_NAME, items))
    plan = _HEAD_PLANS.get(names)
    if plan is None:
        plan = _head_plan(items, names)
    kept: dict[str, str] = {}
    for name, index in plan:
        kept[name] = items[index][2].decode("latin-1")
    return kept


def _head_plan(
    items: list[tuple[bytes, bytes, bytes]], names: tuple[bytes, ...]
) -> tuple[tuple[str, int], ...]:
    """What ``_kept_lowered_headers`` keeps of a head with these lower-case names (remembered,
    up to a bound): a repeated name is kept where it first came, with its last value."""
    last: dict[str, int] = {}
    for index, item in enumerate(items):
        if type(item) is not tuple or len(item) != 3 or not all(type(b) is bytes for b in item):
            raise ValueError("not a (raw name, lower-case name, value) item of bytes")
        name = names[index]
        if name in _KEPT_RAW_NAMES or name.startswith(_RAW_RATE_LIMIT_PREFIXES):
            # The raw name's latin-1 text lower-cased: bytes.lower() changed its ASCII only.
            last[name.decode("latin-1").lower()] = index
    plan = tuple(last.items())
    if len(_HEAD_PLANS) < _MAX_HEAD_PLANS:
        _HEAD_PLANS[names] = plan
    return plan


def _kept_raw_headers(pairs: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """``_kept_headers`` of raw header bytes, decoded as latin-1 (only the kept ones)."""
    kept: dict[str, str] = {}
    for key, value in pairs:
        name = key.lower()
        if name in _KEPT_RAW_NAMES or name.startswith(_RAW_RATE_LIMIT_PREFIXES):
            kept[key.decode("latin-1").lower()] = value.decode("latin-1")
    return kept


_CODING = b"content-encoding"


def _codings_of(
    headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]],
    items: list[tuple[bytes, bytes, bytes]] | None,
) -> str | None:
    """Every ``Content-Encoding`` line of a head, joined as one list (RFC 9110, 5.3), as httpx2
    reads them to decode; None when the head is a plain mapping (one value a name).

    Read only for a head that names a coding: the kept headers hold a repeated name's last
    value, and a body coded twice (``gzip`` on one line, ``br`` on the next) decoded by the
    last alone would be judged corrupt while the caller reads it fine."""
    try:
        if items is not None:
            values = [value for _, name, value in items if name == _CODING]
        else:
            raw = getattr(headers, "raw", None)
            if raw is None and isinstance(headers, Mapping):
                return None
            pairs: Iterable[tuple[bytes, bytes]] = headers if raw is None else raw  # type: ignore[assignment]
            values = [value for name, value in pairs if name.lower() == _CODING]
    except (TypeError, ValueError, AttributeError):  # not pairs of bytes: the kept value stands
        return None
    return b", ".join(values).decode("latin-1") if values else None


def _digest_of(doc: Any) -> str:
    return shape_fingerprint(doc).digest


_BUDGETS: dict[tuple[Any, ...], float | None] = {}
_MISSING: Any = object()


def _budget_ms(timeout: Mapping[str, Any]) -> float | None:
    """The largest of a request's timeouts, in ms (None without a number).

    Memoised (bounded): a client sends the same timeouts with every call. (The gateway's
    carry the time left of each call's deadline, so they seldom repeat: a miss is a lookup,
    not an exception.)
    """
    key = tuple(timeout.values())
    try:
        budget = _BUDGETS.get(key, _MISSING)
    except TypeError:  # an unhashable value: not a timeout httpx2 makes
        return _largest_ms(timeout)
    if budget is _MISSING:
        budget = _largest_ms(timeout)
        if len(_BUDGETS) < 256:
            _BUDGETS[key] = budget
    return budget  # type: ignore[no-any-return]


def _largest_ms(timeout: Mapping[str, Any]) -> float | None:
    values = [v for v in timeout.values() if isinstance(v, int | float)]
    return max(values) * 1000.0 if values else None


_SAFE_URLS: dict[str, str] = {}


def _safe_url(url: str) -> str:
    """Scheme, host and path only: query strings can carry keys (e.g. ``?key=...``).

    Memoised (bounded): a client calls the same few URLs over and over.
    """
    safe = _SAFE_URLS.get(url)
    if safe is None:
        safe = redact_text(url.split("?", 1)[0])
        if len(_SAFE_URLS) < 256:
            _SAFE_URLS[url] = safe
    return safe


#: Where the call's finished (redacted) ``Exchange`` is handed back, as httpx hands back a
#: response's ``extensions``: in the response's (once its body has been read or closed) and in
#: the request's (also when sending raised).
EXCHANGE_EXTENSION = "chatcontract.exchange"

#: The response extension holding the call's ``StreamParser`` when the answer is an SSE
#: stream: the one parser of the call, fed as the bytes pass, which a reader of the stream
#: (``ChatClient``) reads its deltas from instead of decoding the bytes a second time.
STREAM_EXTENSION = "chatcontract.stream"

#: The request extension where the observer leaves a non-streamed 2xx body's
#: :func:`~chatcontract.wire.parse_completion` result (a :class:`ParsedBody`), so that a reader
#: of the same body (``ChatClient``) does not parse it a second time.
PARSED_EXTENSION = "chatcontract.parsed"


class ParsedBody(msgspec.Struct, frozen=True):
    """A non-streamed body as the observer read it, and its ``parse_completion`` result
    against the observer's contract."""

    body: bytes
    contract: Contract | None
    result: CompletionResult

    def result_for(self, body: bytes, contract: Contract | None) -> CompletionResult | None:
        """The result, when ``body`` is the same body and ``contract`` the same contract (the
        answer it gives is then exactly what parsing it again would give); else None."""
        if contract is self.contract and body == self.body:
            return self.result
        return None


class CallObserver:
    """Watches one HTTP call and produces its ``Exchange`` exactly once.

    Args:
        request: the request's facts (:func:`request_facts`).
        contract: classifies the answer (None: the defaults).
        sinks: called with the finished Exchange, in order.
        secrets: removed from failure messages (and, with ``redact``, from the Exchange).
        attempt, route: recorded in the Exchange.
        capture_content: keep the completion text in the Exchange.
        shapes: fingerprint the shapes of a successful call (failures always are).
        request_content: the request body, fingerprinted only if the call fails (with
            ``shapes`` off); it is not kept past the call.
        home: a mapping (the request's ``extensions``) where :meth:`finish` leaves the finished
            Exchange, under :data:`EXCHANGE_EXTENSION`, and a non-streamed 2xx body's parse as
            a :class:`ParsedBody`, under :data:`PARSED_EXTENSION`.
        redact: hand out the Exchange redacted (:meth:`Exchange.redacted`) of ``secrets``.
        on_sink_error: called with a sink and its exception when that sink raises; the other
            sinks still run and the call goes on. None: the exception propagates.
    """

    # What a call starts without, as class defaults (each call's observer sets only what it
    # learns: fewer stores per call).
    _status: int | None = None
    _body_bytes = 0
    _stream: StreamParser | None = None
    _first_byte_at: float | None = None
    _homes: list[dict[str, Any]] | None = None
    _stale_replaced = False
    # A body with a Content-Encoding (other than identity): the header's value, and either
    # its decoder or ``_undecodable``; ``_coding_error``: its data turned out corrupt;
    # ``_over``: decoding stopped at its limit.
    _coding: str | None = None
    _decoder: BodyDecoder | None = None
    _undecodable = False
    _coding_error: str | None = None
    _over = False
    _codings: tuple[str, ...] = ()
    # A mislabelled 2xx answer to a streamed request: ``_sniffing`` until its first bytes say
    # what it is (``sniff``), which ``_sniffed`` holds (decoded) meanwhile; ``_mislabelled``:
    # they said SSE, and it is parsed as the stream it is.
    _sniffing = False
    _sniffed = b""
    _sniffed_raw = 0
    _sniff_decoder: BodyDecoder | None = None
    _sniff_held: list[bytes] | None = None
    _mislabelled = False
    exchange: Exchange | None = None

    def __init__(
        self,
        *,
        request: RequestFacts,
        contract: Contract | None,
        sinks: tuple[ExchangeSink, ...],
        secrets: tuple[str, ...] = (),
        attempt: int = 1,
        route: str = "primary",
        capture_content: bool = False,
        shapes: bool = True,
        request_content: bytes = b"",
        home: dict[str, Any] | None = None,
        redact: bool = False,
        on_sink_error: Callable[[ExchangeSink, Exception], None] | None = None,
    ) -> None:
        self._home = home
        self.clock = PhaseClock()
        # Shape fingerprints cost more than the rest of the observation together: a sampled-out
        # call skips them unless it fails (failures always carry shapes, for drift triage).
        self._shapes = shapes
        self._request_content = request_content
        self.started_at = time.time()
        self._request = request
        self._contract = contract
        self._sinks = sinks
        self._secrets = secrets
        self._attempt = attempt
        self._route = route
        self._capture = capture_content
        self._redact = redact
        self._on_sink_error = on_sink_error
        self._headers: dict[str, str] = {}
        self._body = bytearray()

    def connection_replaced(self) -> None:
        """The request is being sent again on a new connection, the pooled one it went out on
        having been dropped by the server: the Exchange says so, and the send is timed anew."""
        self._stale_replaced = True
        self.clock.restart_send()

    def hand_back_in(self, extensions: dict[str, Any]) -> None:
        """Also leave the call's stream parser (an SSE answer's), under
        :data:`STREAM_EXTENSION`, and its Exchange, under :data:`EXCHANGE_EXTENSION` (now, or
        when it is finished), in ``extensions`` (a response's)."""
        stream = self._stream
        if stream is not None:
            extensions[STREAM_EXTENSION] = stream
        if self.exchange is not None:
            extensions[EXCHANGE_EXTENSION] = self.exchange
        elif self._homes is None:
            self._homes = [extensions]
        else:
            self._homes.append(extensions)

    @property
    def error_body_unread(self) -> bool:
        """The head came with an error status (not 2xx) and its body has not ended: what a
        caller that closes it now would leave unjudged (the SDK closes the error answer of an
        attempt it retries unread: its body names the failure, e.g. a 429's quota code)."""
        status = self._status
        return self.exchange is None and status is not None and not 200 <= status < 300

    @property
    def stream(self) -> StreamParser | None:
        """The call's stream parser, once the head (or, for a mislabelled answer, its first
        bytes: :meth:`sniff`) said the answer is an SSE stream."""
        return self._stream

    @property
    def sniffing(self) -> bool:
        """Whether the answer's first bytes must say what it is before it is read: a 2xx
        answer to a streamed request whose ``Content-Type`` is not ``text/event-stream``
        (a relay or proxy mislabelling the stream, or a provider ignoring ``stream``).
        Give them to :meth:`sniff` before handing the response over (its stream parser is
        then in place), then to :meth:`on_chunk` as usual."""
        return self._sniffing

    # -- events ---------------------------------------------------------------------------

    def on_response(
        self,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]],
        at: float | None = None,
    ) -> None:
        """The response head arrived (headers as a mapping, as raw ``(name, value)`` bytes, or
        an ``httpx2.Headers``); ``at``: when (``time.perf_counter``), default now."""
        self._first_byte_at = self.clock.ends.get("headers") or at or time.perf_counter()
        self._status = status
        kept = None
        items = header_items(headers)  # httpx2.Headers: its names come lower-cased
        if items is not None:
            try:
                kept = _kept_lowered_headers(items)
            except (ValueError, LookupError, TypeError):  # not the items of httpx2 (the seam moved)
                kept = None
        if kept is None:
            kept = _kept_headers_of(headers)
        coding = kept.pop("content-encoding", None)
        if coding is not None:  # once per response: identity (or none) reads as before
            self._use_coding(_codings_of(headers, items) or coding)
        self._headers = kept
        is_sse = "text/event-stream" in kept.get("content-type", "")
        if 200 <= status < 300 and not self._undecodable:
            if is_sse:
                self._stream = self._new_stream()
            elif self._request.stream:  # mislabelled, or no stream at all: its bytes say
                self._sniffing = True
                self._sniff_held = []
                self.on_chunk = self._on_sniffing_chunk  # type: ignore[method-assign]

    def _new_stream(self) -> StreamParser:
        """The parser of an SSE answer."""
        # Usage is owed only when this request asked for it: the openai SDK, by default,
        # sends no ``stream_options`` and gets no usage chunk, rightly.
        # Deferred: after the first token, reads are decoded a batch at a time (inline,
        # before the stream's end returns) unless a reader (ChatClient) takes each delta.
        return StreamParser(
            contract=self._contract,
            expect_usage=self._request.include_usage,
            clock=_perf_counter,
            defer=True,
            windows=True,
        )

    def sniff(self, data: bytes) -> bool:
        """The next bytes of an answer that is :attr:`sniffing` (as received: a coded body
        is decoded here, on the side, as far as :data:`SNIFF_BYTES`); True once its first
        bytes said what it is (then, and for an answer not sniffing, at once): an SSE field
        line (``data:``, ``event:``, ``id:``, ``retry:``) or a ``:`` comment is a stream,
        parsed as one, with its ``Content-Type`` a tolerated contract violation when it is
        whole and sound; anything else (``{``: a provider that ignored ``stream``) is a body,
        judged as before. Undecided after :data:`SNIFF_BYTES`: a body. These bytes are not
        fed: give them to :meth:`on_chunk` afterwards, as every other read. Never raises."""
        if not self._sniffing:
            return True
        self._sniffed_raw += len(data)
        room = SNIFF_BYTES - len(self._sniffed)
        if self._decoder is not None:  # coded: what it decodes to says what it is
            decoder = self._sniff_decoder
            if decoder is None:
                decoder = self._sniff_decoder = BodyDecoder(self._codings)
            try:
                data = b"".join(decoder.decode(data, room))
            except CodingError:  # corrupt: judged as a body (``invalid_encoding``)
                self._end_sniff(stream=False)
                return True
        sniffed = self._sniffed = self._sniffed + data[:room]
        found = _sse_or_body(sniffed)
        if found is None and max(len(sniffed), self._sniffed_raw) < SNIFF_BYTES:
            return False
        self._end_sniff(stream=found is True)
        return True

    def _end_sniff(self, *, stream: bool) -> None:
        """The answer's first bytes said what it is: a stream (parsed from now on) or not."""
        self._sniffing = False
        self._sniffed = b""
        self._sniff_decoder = None
        if self._decoder is not None:
            self.on_chunk = self._on_coded_chunk  # type: ignore[method-assign]
        else:
            vars(self).pop("on_chunk", None)
        if stream:
            self._mislabelled = True
            self._stream = self._new_stream()

    def _on_sniffing_chunk(self, chunk: bytes, at: float | None = None) -> None:
        """:meth:`on_chunk` of an answer still :attr:`sniffing` (its reads not given to
        :meth:`sniff` first): held until its first bytes say what it is, then fed."""
        held = self._sniff_held
        if held is None or not self._sniffing:  # decided by an earlier call: fed as it comes
            self.on_chunk(chunk, at)
            return
        held.append(chunk)
        if self.sniff(chunk):
            self._feed_held(at)

    def _feed_held(self, at: float | None = None) -> None:
        held, self._sniff_held = self._sniff_held, None
        for piece in held or ():
            self.on_chunk(piece, at)

    def end_sniff(self) -> None:
        """The body ended, failed or was closed while :attr:`sniffing`: what came is a body
        (judged as such), not a stream. Nothing when not sniffing."""
        if self._sniffing:
            self._end_sniff(stream=False)
            self._feed_held()

    def on_chunk(self, chunk: bytes, at: float | None = None) -> None:
        """A body chunk passed through to the caller (``at``: when, default now)."""
        stream = self._stream
        if stream is not None:
            stream.feed(chunk, at)  # it reads the clock itself while a first token is awaited
            return
        self._body_bytes += len(chunk)
        if self._body_bytes <= MAX_BODY_BYTES:  # once above, nothing more is kept (no gaps)
            self._body += chunk

    def _use_coding(self, value: str) -> None:
        """The head names a content coding: the body is decoded before it is parsed (each
        read, by :meth:`_on_coded_chunk`, which then stands for :meth:`on_chunk`), or, when it
        cannot be, only counted and never judged as a completion."""
        value = value.strip().lower()
        codings = codings_of(value)
        if codings == ():  # identity: the bytes are the body
            return
        self._coding = value[:64]
        if codings is None:
            self._undecodable = True
        else:
            self._codings = codings
            self._decoder = BodyDecoder(codings)
        self.on_chunk = self._on_coded_chunk  # type: ignore[method-assign]

    def content_decoded(self) -> None:
        """The body about to be given was already decoded by httpx2 (a response built with
        its content, whose codings it removed): it is not decoded a second time."""
        if self._decoder is not None:
            self._decoder = None
            if not self._sniffing:  # (sniffing: ``_end_sniff`` restores it)
                del self.on_chunk  # the bytes given are the body

    def _on_coded_chunk(self, chunk: bytes, at: float | None = None) -> None:
        """:meth:`on_chunk` of a body with a content coding: its decoded bytes are what the
        parser is fed (or what is kept), within :data:`MAX_BODY_BYTES` (a body) or
        :data:`MAX_DECODED_STREAM_BYTES` (a stream) plus one byte; past that, or once the
        data turned out corrupt, nothing more is decoded. ``_body_bytes`` counts the decoded
        bytes (the wire bytes of a body that cannot be decoded)."""
        if self._undecodable:
            self._body_bytes += len(chunk)
            return
        decoder = self._decoder
        if decoder is None:  # corrupt, or past its limit: nothing more is decoded
            return
        stream = self._stream
        limit = MAX_BODY_BYTES if stream is None else MAX_DECODED_STREAM_BYTES
        try:
            for piece in decoder.decode(chunk, limit + 1 - self._body_bytes):
                self._body_bytes += len(piece)
                if stream is not None:
                    if self._body_bytes <= limit:
                        stream.feed(piece, at)
                elif self._body_bytes <= limit:
                    self._body += piece
        except CodingError as exc:
            self._coding_error = str(exc)[:200]
            self._decoder = None
            return
        if self._body_bytes > limit:
            self._over = True
            self._decoder = None

    def _drain(self) -> None:
        """At the body's end: what the decoder still holds (within the limits)."""
        if self._decoder is not None:
            self._on_coded_chunk(b"")

    def _coding_failure(self, status: int) -> Failure | None:
        """What the body's content coding alone says of the call, if anything."""
        if self._undecodable:
            # Not a parser failure: no byte of it was parsed. The call is not a success
            # either: nothing vouches for the answer, and httpx2 (using the same libraries)
            # hands the openai SDK the same undecoded bytes.
            return self._contract_failure(
                "unsupported_encoding",
                f"the body was not judged: its Content-Encoding {self._coding!r} cannot be "
                f"decoded here (decodable: {', '.join(supported_codings())})",
                status,
                kind="http",
            )
        if self._coding_error is not None:
            return self._contract_failure(
                "invalid_encoding",
                f"the body is not valid {self._coding} data ({self._coding_error})",
                status,
            )
        if self._over and self._stream is not None:
            return self._contract_failure(
                "body_too_large",
                f"the stream decodes to more than {MAX_DECODED_STREAM_BYTES >> 20} MiB "
                f"({self._coding}): judged no further",
                status,
            )
        return None

    def _mislabelled_failure(self, status: int) -> Failure:
        """A whole, sound stream that came with another ``Content-Type`` than SSE's: a
        tolerated contract violation (the caller has its answer)."""
        content_type = self._headers.get("content-type")
        label = "no Content-Type" if content_type is None else f"Content-Type {content_type[:64]!r}"
        return self._contract_failure(
            "stream_content_type",
            f"the stream came with {label}, not text/event-stream (read as the SSE stream it "
            "is; a client that goes by the Content-Type fails it)",
            status,
            kind="http",
        )

    def _contract_failure(
        self, code: str, message: str, status: int, *, kind: Kind = "parser"
    ) -> Failure:
        """A ``contract`` failure of the body itself (its size or its coding)."""
        return make_failure(
            kind=kind,
            category="contract",
            code=code,
            message=message,
            status=status,
            secrets=self._secrets,
        )

    @property
    def chunk_sink(self) -> Callable[[bytes], None]:
        """What to call with each body chunk: :meth:`on_chunk`, or the stream parser's own
        ``feed`` once the head said the answer is a stream (one call fewer per read) and
        named no content coding to remove first."""
        stream = self._stream
        return self.on_chunk if stream is None or self._coding is not None else stream.feed

    def on_error(self, exc: BaseException) -> Exchange:
        """Sending or reading failed. Mid-stream, the stream verdict names it: a read timeout
        (the caller's idle limit or deadline) is ``stalled``, its failure named ``deadline``
        when the call's deadline passed and ``stream_stalled`` otherwise; any other failure
        (the peer reset the connection or closed it inside the HTTP body) is ``dropped``,
        which is a network failure, unlike a clean close without ``finish_reason`` (``cut``)."""
        self.end_sniff()
        if self._stream is not None and self._status is not None:
            import httpx2

            if isinstance(exc, DeadlineExceeded):  # the call's deadline, not an idle limit
                return self.finish(stalled=True, deadline=True)
            if isinstance(exc, httpx2.TimeoutException | TimeoutError):
                return self.finish(stalled=True)
            return self.finish(dropped=True)
        failure = classify_exception(exc, secrets=self._secrets)
        if self._status is None:
            if self.clock.received:  # part of the head came: a first byte arrived all the same
                self._first_byte_at = self._first_byte_at or self.clock.received_at
                if failure.code == "read_timeout":
                    failure = self._stalled(
                        failure, "the response head stalled after its first byte"
                    )
            return self._emit(failure=failure, response=None)
        # The head came, then reading the (non-streamed) body failed: what arrived is recorded,
        # so the client names a stall for what it was, never a silent route (first byte).
        if failure.code == "read_timeout":
            failure = self._stalled(failure, "the response body stalled after its head")
        response = self._response_facts(self._status, None, _body_fingerprint(bytes(self._body)))
        return self._emit(failure=failure, response=response)

    def closed(self, at: float | None = None) -> Exchange:
        """The caller stopped the call before its answer ended: it closed the body unread, or
        its task was cancelled (or interrupted) while the call was sent or read, or it dropped
        the response (``at``: when, default now). The Exchange says so (``closed_by_caller``)
        and judges only what had arrived; once."""
        if self.exchange is not None:
            return self.exchange
        if self._status is None:  # stopped before the response head: nothing to judge
            return self._emit(None, None, None, at, closed=True)
        return self.finish(closed=True, at=at)

    def _stalled(self, failure: Failure, words: str) -> Failure:
        """``failure`` (a read timeout once the first byte had come) with a message saying so."""
        return make_failure(
            kind=failure.kind,
            category=failure.category,
            code=failure.code,
            message=f"{words}: no bytes within the read timeout",
            secrets=self._secrets,
        )

    def finish(
        self,
        *,
        stalled: bool = False,
        dropped: bool = False,
        deadline: bool = False,
        closed: bool = False,
        at: float | None = None,
    ) -> Exchange:
        """The body ended (or the caller closed it; ``at``: when, default now): classify and
        emit, once. ``dropped``: reading the body failed before its end. ``deadline`` (with
        ``stalled``): what stopped the stream was the call's deadline, not a silent socket, so
        an unfinished stream is named ``transport/timeout/deadline``, as a head or a
        non-streamed body cut by the deadline is. ``closed``: the caller closed the body
        before its end: what did not arrive is not judged (``Exchange.closed_by_caller``, a
        stream's verdict ``closed``), unless what did arrive already settled it (an in-band
        error, ``[DONE]``, a body past its size limit, corrupt coded data)."""
        if self.exchange is not None:
            return self.exchange
        self.end_sniff()
        ended = at or time.perf_counter()
        status = self._status if self._status is not None else 0
        coded = self._coding is not None
        if coded and not (stalled or dropped):
            self._drain()
        if self._stream is not None:
            result = self._stream.close(ended, stalled=stalled, dropped=dropped, closed=closed)
            failure = classify_stream(
                result,
                status=status,
                contract=self._contract,
                max_tokens=self._request.max_tokens,
                secrets=self._secrets,
            )
            if deadline and failure is not None and failure.code == "stream_stalled":
                failure = make_failure(
                    kind="transport",
                    category="timeout",
                    code="deadline",
                    message="the call's deadline ran out before the stream ended",
                    status=status,
                    secrets=self._secrets,
                )
            if coded:  # corrupt or too large: what the parser saw was not the whole stream
                failure = self._coding_failure(status) or failure
            if self._mislabelled and failure is None and result.verdict is not _CLOSED:
                failure = self._mislabelled_failure(status)
            response = self._response_facts(
                status,
                result,
                self._chunk_fingerprint() if self._shapes or failure else None,
                str(result.verdict),
                result.chunk_count,
            )
            ttft = self.clock.since_origin_ms(result.first_token_at)
            stopped = failure is None and result.verdict is StreamVerdict.CLOSED
            return self._emit(failure, response, ttft, ended, closed=stopped)
        body = bytes(self._body)
        contract = self._contract
        parsed = None
        completion = None
        if coded and (self._undecodable or self._coding_error is not None):
            if 200 <= status < 300:
                failure = self._coding_failure(status)
                return self._emit(failure, self._response_facts(status, None, None), None, ended)
            body = b""  # an error status: judged by its status, not by bytes unread
        if 200 <= status < 300 and self._body_bytes > MAX_BODY_BYTES:
            # Only the first MAX_BODY_BYTES were kept (and ChatClient reads no further):
            # judged for its size, not as the invalid JSON its cut-off head would parse as.
            failure = self._contract_failure(
                "body_too_large",
                f"the response body is above {MAX_BODY_BYTES >> 20} MiB: not a completion",
                status,
            )
            response = self._response_facts(status, None, None)
            return self._emit(failure, response, None, ended)
        if closed and 200 <= status < 300:  # only part of the answer was read: not judged
            return self._emit(
                None, self._response_facts(status, None, None), None, ended, closed=True
            )
        if 200 <= status < 300:
            parsed = parse_completion(body, contract=contract)
            completion = parsed.completion
            if self._home is not None:
                self._home[PARSED_EXTENSION] = ParsedBody(body, contract, parsed)
        headers = self._headers
        failure = classify_received(
            status,
            headers,
            headers.get("content-type"),  # the kept names are lower-case
            body,
            contract=contract,
            max_tokens=self._request.max_tokens,
            secrets=self._secrets,
            parsed=parsed,
        )
        fingerprint = _body_fingerprint(body) if self._shapes or failure is not None else None
        response = self._response_facts(status, completion, fingerprint)
        return self._emit(failure, response, None, ended)

    # -- building -------------------------------------------------------------------------

    def _chunk_fingerprint(self) -> Fingerprint | None:
        """The union of the chunk shapes seen in the stream's head and tail windows."""
        stream = self._stream
        if stream is None:  # pragma: no cover - only streams are fingerprinted by chunks
            return None
        head, tail = stream.raw_windows()
        windows = [head]
        if stream.bytes_fed > len(head):  # a long stream: its last chunks too
            boundary = tail.find(b"\n\n")
            windows.append(tail[boundary + 2 :] if boundary >= 0 else b"")
        texts: list[str] = []
        for window in windows:
            decoder = SSEDecoder()
            texts += [event.data for event in [*decoder.feed(window), *decoder.close()]]
        paths = union_of_shape_paths(texts)  # [DONE] is no JSON: it adds nothing
        if not paths:
            return None
        ordered = tuple(sorted(paths))
        return Fingerprint(digest=_digest(ordered), paths=ordered)

    def _response_facts(
        self,
        status: int,
        answer: _Answer | None,
        fingerprint: Fingerprint | None,
        stream_verdict: str | None = None,
        chunk_count: int = 0,
    ) -> ResponseFacts:
        """The response's facts: its head's, and those of ``answer`` (the parsed completion or
        the stream's result; None: nothing was parsed)."""
        headers = self._headers  # the kept ones only (``_kept_headers``)
        # The kept headers are the content type, the request ids and the rate limits. (Loops,
        # not comprehensions: each of those is a function call.)
        ids: dict[str, str] = {}
        limits: dict[str, str] = {}
        for name, value in headers.items():
            if name in _REQUEST_ID_NAMES:
                ids[name] = value[:128]
            elif name != "content-type":
                limits[name] = value[:64]
        if len(ids) > 1:  # most specific first
            ids = {name: ids[name] for name in _REQUEST_ID_HEADERS if name in ids}
        stream = self._stream
        model = response_id = finish_reason = usage = content = None
        if answer is not None:
            model, response_id, finish_reason = answer.model, answer.id, answer.finish_reason
            usage, content = answer.usage, answer.content
        return ResponseFacts(
            status=status,
            content_type=headers.get("content-type"),
            request_ids=ids,
            shape_fingerprint=None if fingerprint is None else fingerprint.digest,
            shape_paths=() if fingerprint is None else fingerprint.paths,
            model=model,
            response_id=response_id,
            finish_reason=finish_reason,
            usage=usage,
            content_chars=len(content) if content else 0,
            stream_verdict=stream_verdict,
            chunk_count=chunk_count,
            body_bytes=self._body_bytes if stream is None else stream.bytes_fed,
            content_encoding=self._coding,
            rate_limit_headers=limits,
            content=content if self._capture else None,
        )

    def _emit(
        self,
        failure: Failure | None,
        response: ResponseFacts | None,
        ttft_ms: float | None = None,
        ended: float | None = None,
        *,
        closed: bool = False,
    ) -> Exchange:
        if self.exchange is not None:
            return self.exchange
        clock = self.clock
        request = self._request
        if failure is not None and request.shape_fingerprint is None and self._request_content:
            found = fingerprint_bytes(self._request_content)
            if found is not None:
                request = msgspec.structs.replace(request, shape_fingerprint=found.digest)
        self._request_content = b""  # the prompt is not kept past the call
        ends = clock.ends
        origin = clock.origin
        first_byte_at = self._first_byte_at
        new_connection = "connect" in ends or "dns" in ends or "tls" in ends
        timings = Timings(
            dns_ms=clock.duration_ms("dns") if new_connection else None,
            connect_ms=clock.duration_ms("connect") if new_connection else None,
            tls_ms=clock.duration_ms("tls") if new_connection else None,
            ttfb_ms=None if first_byte_at is None else (first_byte_at - origin) * 1000.0,
            ttft_ms=ttft_ms,
            total_ms=((ended or time.perf_counter()) - origin) * 1000.0,
        )
        exchange = Exchange(
            request=request,
            response=response,
            timings=timings,
            started_at=self.started_at,
            attempt=self._attempt,
            route=self._route,
            failure=failure,
            stale_connection_replaced=self._stale_replaced,
            closed_by_caller=closed,
        )
        if self._redact and (
            failure is not None
            or (response is not None and not response_is_clean(response, self._secrets))
        ):  # (the usual success is clean: one scan of its texts, no call of ``redacted``)
            exchange = exchange.redacted(self._secrets)
        self.exchange = exchange
        home = self._home
        if home is not None:
            home[EXCHANGE_EXTENSION] = exchange
        homes = self._homes
        if homes is not None:
            for extensions in homes:
                extensions[EXCHANGE_EXTENSION] = exchange
            self._homes = None
        on_error = self._on_sink_error
        for sink in self._sinks:
            if on_error is None:
                sink(exchange)
                continue
            try:
                sink(exchange)
            except Exception as exc:  # a sink never fails the call it observes
                on_error(sink, exc)
        return exchange


_CLOSED = StreamVerdict.CLOSED
#: What an SSE stream may begin with (after blank lines): a field line or a comment.
_SSE_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":")
_BOM = b"\xef\xbb\xbf"


def _sse_or_body(prefix: bytes) -> bool | None:
    """Whether a body beginning with ``prefix`` is an SSE stream (True) or not (False: a JSON
    body, or anything else); None while ``prefix`` is too short to tell (empty, whitespace,
    part of a byte order mark or of a field name)."""
    if len(prefix) < len(_BOM) and _BOM.startswith(prefix):
        return None
    if prefix.startswith(_BOM):
        prefix = prefix[len(_BOM) :]
    head = prefix.lstrip()
    if not head:
        return None
    for start in _SSE_STARTS:
        if head.startswith(start):
            return True
        if start.startswith(head):  # cut inside a field name
            return None
    return False


def _digest(paths: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]


def _body_fingerprint(body: bytes) -> Fingerprint | None:
    return fingerprint_bytes(body) if body else None
