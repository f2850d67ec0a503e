"""``instrument()``: an httpx2 client that observes every chat call the openai SDK makes.

Hand it to the official SDK and every call to the contract's endpoint is timed (DNS, connect,
TLS, first byte, first token, total), classified by the failure taxonomy and metered, while
the SDK sees exactly the bytes it would have seen: nothing is buffered, retried or rewritten.
Streams are watched as they pass (first token, completeness, in-band errors).

Example::

    registry = prometheus_client.CollectorRegistry()
    contract = chatcontract.contract.load_preset("cometapi")
    sdk = openai.OpenAI(
        base_url=contract.endpoint.base_url,
        api_key=key,
        max_retries=0,  # the contract's policy decides retries; see check_sdk_client()
        http_client=chatcontract.instrument(contract=contract, registry=registry, secrets=[key]),
    )
    for problem in chatcontract.check_sdk_client(sdk, contract):
        log.warning(problem)

What is observed: requests whose path ends with the contract's ``endpoint.path`` (other SDK
calls such as ``/models`` pass straight through). Where it goes: a ``PrometheusSink`` on
``registry`` (none when ``registry`` is None: no process-global registry is used behind your
back), the JSON event log (``chatcontract.events`` logger: every failure, successes at
``shadow_rate``), and any ``sinks`` you add: ``TelemetrySink`` objects or plain callables
receiving each ``Exchange`` (the way to get at the Exchanges themselves). A sink that raises
is counted and skipped, never turned into a failed call. Every call is observed inline, when
it completes: its Exchange has reached the sinks before the SDK gets the answer (a stream's,
when its body has been read or closed). A call the application stops before its answer ended
(it breaks out of a stream, closes a response unread, or its task is cancelled) is its own
doing, not the provider's: its Exchange has ``closed_by_caller`` set and no failure (a
stream's verdict is ``closed``), and it is metered as a request with the times it had, never
as an error, a schema failure or an incomplete stream. Shape fingerprints, the costliest
part of observing a call, are taken for every failure and for a sample of successes
(``shape_sample_rate``, by default the event log's ``shadow_rate``).

The SDK's own retries are noticed through its ``x-stainless-retry-count`` header: each
retried attempt's Exchange carries ``attempt = count + 1``, a success after retries counts in
``llm_retry_success_total``, and when the contract's policy also retries
(``policy.retry.max_attempts > 1``) a ``StackedRetriesWarning`` is issued once per client.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx2

from chatcontract._log import get_logger
from chatcontract._loopclose import LoopCloser
from chatcontract.contract import Contract, load, load_preset
from chatcontract.errors import ConfigError
from chatcontract.redact import known_secrets
from chatcontract.telemetry import (
    DEFAULT_SHADOW_RATE,
    CallLabels,
    ClientEvent,
    JsonEventLog,
    Telemetry,
    TelemetrySink,
)
from chatcontract.transport import (
    AsyncInstrumentedTransport,
    Exchange,
    InstrumentedTransport,
    install_backend,
)
from chatcontract.transport._httpx_seam import url_key
from chatcontract.transport.instrumented import request_header, sent_header

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "RETRY_COUNT_HEADER",
    "StackedRetriesWarning",
    "ainstrument",
    "check_sdk_client",
    "flush",
    "instrument",
]

logger = get_logger("chatcontract.instrumentation")

#: The header the openai SDK sends on every request: how many retries it has made so far.
RETRY_COUNT_HEADER = "x-stainless-retry-count"

#: Client options that configure the connection pool, not the client: with a custom transport
#: httpx2 would silently ignore them (and ``proxy`` would route around the instrumentation),
#: so they are given to the transport instrument() builds.
_TRANSPORT_OPTIONS = (
    "verify", "cert", "trust_env", "http1", "http2", "limits", "proxy", "uds", "local_address",
    "retries", "socket_options",
)  # fmt: skip

#: The openai SDK's own defaults for the client it would build (``DefaultHttpxClient``).
_SDK_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)

SinkLike = TelemetrySink | Callable[[Exchange], None]
ContractLike = Contract | str | os.PathLike[str] | None


class StackedRetriesWarning(UserWarning):
    """The openai SDK retried under a contract policy that also retries: attempts multiply."""


# -- building blocks -----------------------------------------------------------------------------


def _resolve_contract(contract: ContractLike) -> Contract:
    if contract is None:
        return load_preset("cometapi")
    if isinstance(contract, Contract):
        return contract
    if isinstance(contract, str | os.PathLike):
        return load(contract)
    raise ConfigError(
        f"contract must be a Contract or the path of a contract file, got "
        f"{type(contract).__name__}; e.g. contract='chatcontract.yaml'"
    )


class _CallbackSink:
    """Adapts a plain ``callable(Exchange)`` to the TelemetrySink protocol."""

    __slots__ = ("_callback",)

    def __init__(self, callback: Callable[[Exchange], None]) -> None:
        self._callback = callback

    def handle_exchange(self, exchange: Exchange, labels: CallLabels) -> None:
        self._callback(exchange)

    def handle_event(self, event: ClientEvent, labels: CallLabels) -> None:
        return None


class _ShapeSampledLog:
    """The event log of ``instrument()``: every failure, and the successes whose shapes the
    transport sampled, so each shadow line carries its fingerprints (one sampling decision)."""

    __slots__ = ("_log",)

    def __init__(self, log: JsonEventLog) -> None:
        self._log = log

    def handle_exchange(self, exchange: Exchange, labels: CallLabels) -> None:
        if exchange.failure is None and exchange.request.shape_fingerprint is None:
            return  # a success outside the shape sample
        self._log.handle_exchange(exchange, labels)

    def handle_event(self, event: ClientEvent, labels: CallLabels) -> None:
        self._log.handle_event(event, labels)


def _rate(name: str, value: float | None, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{name} must be a number between 0 and 1 (e.g. 0.01), got {value!r}")
    return float(value)


def _build_telemetry(
    contract: Contract,
    *,
    registry: CollectorRegistry | None,
    sinks: Sequence[SinkLike],
    event_log: bool,
    shadow_rate: float,
    shape_rate: float,
    secrets: tuple[str, ...],
) -> Telemetry:
    chosen: list[TelemetrySink] = []
    if registry is not None:
        from chatcontract.telemetry import PrometheusSink  # loads prometheus_client, only now

        try:
            chosen.append(PrometheusSink(registry, contract=contract))
        except ValueError as exc:  # prometheus_client: "Duplicated timeseries in CollectorRegistry"
            raise ConfigError(
                "this registry already holds chatcontract's metrics: to meter several clients "
                "on one registry, create one PrometheusSink(registry) and pass it to each "
                "client as sinks=[sink] (with registry=None)"
            ) from exc
    if event_log and shape_rate == shadow_rate:
        chosen.append(_ShapeSampledLog(JsonEventLog(shadow_rate=1.0, secrets=secrets)))
    elif event_log:
        chosen.append(JsonEventLog(shadow_rate=shadow_rate, secrets=secrets))
    for sink in sinks:
        if isinstance(sink, TelemetrySink):
            chosen.append(sink)
        elif callable(sink):
            chosen.append(_CallbackSink(sink))
        else:
            raise ConfigError(
                f"sinks takes TelemetrySink objects or callables receiving an Exchange, got "
                f"{type(sink).__name__}"
            )
    labels = CallLabels(provider=contract.provider, endpoint=contract.endpoint.path)
    # The SDK's retries are its own: a success after them is told from its Exchange.
    return Telemetry(chosen, labels, retry_successes=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Setup:
    """What ``instrument`` and ``ainstrument`` build alike before choosing sync or async."""

    contract: Contract
    gate: _Gate
    #: The transport's sinks: the telemetry hub, when it has a sink to feed.
    sinks: tuple[Callable[[Exchange], None], ...]
    secrets: tuple[str, ...]
    shape_rate: float
    transport_options: dict[str, Any]
    client_kwargs: dict[str, Any]


def _check_transport(caller: str, transport: object, base: type) -> None:
    """A transport passed in is of the kind the caller's client drives (sync or async)."""
    if transport is not None and not isinstance(transport, base):
        other = "instrument" if caller == "ainstrument" else "ainstrument"
        raise ConfigError(
            f"{caller}(transport=...) takes an httpx2.{base.__name__}, got "
            f"{type(transport).__module__}.{type(transport).__qualname__} (for the other kind "
            f"of client, use {other}())"
        )


def _setup(
    *,
    contract: ContractLike,
    registry: CollectorRegistry | None,
    sinks: Sequence[SinkLike],
    event_log: bool,
    shadow_rate: float | None,
    shape_sample_rate: float | None,
    custom_transport: bool,
    secrets: Sequence[str],
    client_kwargs: dict[str, Any],
) -> _Setup:
    if shadow_rate is not None and not event_log:
        raise ConfigError("shadow_rate applies to the event log: pass event_log=True or drop it")
    if not isinstance(secrets, str | Sequence):
        raise ConfigError(
            "secrets takes a list of strings, e.g. secrets=[os.environ['MY_KEY']]; got "
            f"{type(secrets).__name__}"
        )
    try:
        secrets = known_secrets(secrets)  # one string is one secret, not its characters
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    if isinstance(sinks, str | bytes) or not isinstance(sinks, Sequence | set | frozenset):
        raise ConfigError(
            "sinks takes a list of TelemetrySink objects or callables receiving an Exchange, "
            f"e.g. sinks=[PrometheusSink(registry)]; got {type(sinks).__name__}"
        )
    shadow = _rate("shadow_rate", shadow_rate, DEFAULT_SHADOW_RATE)
    shapes = _rate("shape_sample_rate", shape_sample_rate, shadow)
    resolved = _resolve_contract(contract)
    # The contract's own key is always redacted: a caller need not think of passing it.
    found = resolved.auth.resolve()
    redact = tuple(dict.fromkeys(s for s in (*secrets, found[1] if found else "") if s))
    telemetry = _build_telemetry(
        resolved, registry=registry, sinks=sinks, event_log=event_log, shadow_rate=shadow,
        shape_rate=shapes, secrets=redact,
    )  # fmt: skip
    kwargs = dict(client_kwargs)
    options = _split_transport_options(kwargs, custom_transport=custom_transport)
    return _Setup(
        contract=resolved, gate=_Gate(resolved), secrets=redact, shape_rate=shapes,
        sinks=(telemetry.exchange,) if telemetry.sinks else (), transport_options=options,
        client_kwargs=kwargs,
    )  # fmt: skip


def _split_transport_options(
    client_kwargs: dict[str, Any], *, custom_transport: bool
) -> dict[str, Any]:
    options = {
        name: client_kwargs.pop(name) for name in _TRANSPORT_OPTIONS if name in client_kwargs
    }
    if custom_transport and options:
        raise ConfigError(
            f"instrument(transport=...) cannot apply {', '.join(sorted(options))}: "
            "configure the transport you pass with them instead"
        )
    if "trust_env" in options:
        client_kwargs["trust_env"] = options["trust_env"]
    options.setdefault("limits", _SDK_LIMITS)
    client_kwargs.setdefault("follow_redirects", True)
    return options


class _Gate:
    """Decides which requests are metered and notices the SDK's retries (shared sync/async)."""

    def __init__(self, contract: Contract) -> None:
        self._path = contract.endpoint.path.rstrip("/")
        self._max_attempts = contract.policy.retry.max_attempts
        self._warned = False
        self._lock = threading.Lock()
        # Whether a URL goes to the endpoint, by its parsed parts (a client calls a few URLs).
        self._metered_urls: dict[tuple[Any, ...], bool] = {}

    def metered(self, request: httpx2.Request) -> bool:
        """True when the request goes to the contract's endpoint (and is then observed)."""
        sent = sent_header(request, _RETRY_COUNT_NAME)
        # b"0": the SDK's first attempt, i.e. nearly every call
        retries = (
            0
            if sent is None or sent == b"0"
            else _retry_count(request_header(request, _RETRY_COUNT_NAME))
        )
        if retries and self._max_attempts > 1:
            self._warn_once(retries)
        url = request.url
        key = url_key(url)
        ours = None if key is None else self._metered_urls.get(key)
        if ours is None:
            ours = url.path.rstrip("/").endswith(self._path)
            if key is not None and len(self._metered_urls) < _MAX_URLS:
                self._metered_urls[key] = ours
        if not ours:
            return False
        if retries and "chatcontract" not in request.extensions:
            request.extensions["chatcontract"] = {"attempt": retries + 1}
        return True

    def _warn_once(self, retries: int) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        message = (
            f"the openai SDK retried ({RETRY_COUNT_HEADER}={retries}) under a contract policy "
            "that also retries: set max_retries=0 on the SDK client (the contract's "
            f"policy.retry.max_attempts is {self._max_attempts}: the attempts multiply)"
        )
        logger.warning(message)
        # If a warnings filter turns it into an error, it is suppressed: the observer must never
        # fail the call it observes (the SDK would take the exception for a network error and
        # retry). The log line above stands.
        with contextlib.suppress(StackedRetriesWarning):
            warnings.warn(message, StackedRetriesWarning, stacklevel=2)


_RETRY_COUNT_NAME = RETRY_COUNT_HEADER.encode()
#: The most URLs a gate remembers the verdict of.
_MAX_URLS = 256


def _retry_count(raw: str | None) -> int:
    if not raw or raw == "0":  # "0": the SDK's first attempt, i.e. nearly every call
        return 0
    try:
        return max(int(raw), 0)
    except ValueError:
        return 0


class _MeteredTransport(httpx2.BaseTransport):
    def __init__(
        self, gate: _Gate, observed: InstrumentedTransport, inner: httpx2.BaseTransport
    ) -> None:
        self._gate = gate
        self._observed = observed
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._gate.metered(request):
            return self._observed.handle_request(request)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._observed.close()  # closes the shared inner transport


class _AsyncMeteredTransport(httpx2.AsyncBaseTransport):
    def __init__(
        self,
        gate: _Gate,
        observed: AsyncInstrumentedTransport,
        inner: httpx2.AsyncBaseTransport,
        *,
        owns_inner: bool,
    ) -> None:
        self._gate = gate
        self._observed = observed
        self._inner = inner
        # Our own pool is closed by its event loop even if the application never closes the
        # client (see _loopclose); a transport the application passed stays its own.
        self._closer = LoopCloser(observed.aclose) if owns_inner else None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._closer is not None:
            await self._closer.enter()
        if self._gate.metered(request):
            return await self._observed.handle_async_request(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self._closer is not None:
            await self._closer.aclose()  # closes the observed transport (below) in its loop
        else:
            await self._observed.aclose()  # closes the shared inner transport


# -- public API ----------------------------------------------------------------------------------


def instrument(
    *,
    contract: ContractLike = None,
    registry: CollectorRegistry | None = None,
    sinks: Sequence[SinkLike] = (),
    event_log: bool = True,
    shadow_rate: float | None = None,
    shape_sample_rate: float | None = None,
    transport: httpx2.BaseTransport | None = None,
    secrets: Sequence[str] = (),
    **client_kwargs: Any,
) -> httpx2.Client:
    """An ``httpx2.Client`` that observes every chat call made through it; give it to the SDK.

    Args:
        contract: a ``Contract`` or the path of a contract file (default: the cometapi preset);
            it classifies responses and names the ``provider``/``endpoint`` labels.
        registry: the Prometheus registry to meter on (default: none; ``PrometheusSink`` is
            added only when given). To share a registry between clients, pass one
            ``PrometheusSink`` in ``sinks`` instead.
        sinks: more ``TelemetrySink`` objects, or callables receiving each ``Exchange``.
        event_log: log every failure and sampled successes as JSON (``chatcontract.events``).
        shadow_rate: the fraction of successes the event log keeps (default 0.01).
        shape_sample_rate: the fraction of successful calls whose request and response shapes
            are fingerprinted (failures always are); the costliest part of observing a call.
            Default: the shadow rate, and the event log then keeps exactly the fingerprinted
            successes, so every shadow line carries its shapes. 1.0 for full drift data.
        transport: the httpx2 transport doing the I/O (default: ``httpx2.HTTPTransport`` with
            the openai SDK's connection limits and timed DNS).
        secrets: more strings redacted from every failure message and log line. The
            contract's key (from its ``auth.env``) and the key each request carries are
            always redacted, from every Exchange and log line, without being listed here.
        **client_kwargs: passed to ``httpx2.Client`` (``follow_redirects`` defaults to True as
            in the SDK's own client; pool options such as ``verify``, ``limits`` or ``proxy``
            go to the transport). Leave ``timeout`` unset to keep the SDK's.

    Returns:
        The client, for ``openai.OpenAI(http_client=...)``. Call ``check_sdk_client`` on the
        SDK client afterwards to catch stacked retries and over-long timeouts up front.

    Raises:
        ConfigError: an unreadable contract, a rate outside 0..1, a registry already metered,
            or pool options together with ``transport``.
    """
    _check_transport("instrument", transport, httpx2.BaseTransport)
    setup = _setup(
        contract=contract, registry=registry, sinks=sinks, event_log=event_log,
        shadow_rate=shadow_rate, shape_sample_rate=shape_sample_rate,
        custom_transport=transport is not None, secrets=secrets, client_kwargs=client_kwargs,
    )  # fmt: skip
    inner = transport
    if inner is None:
        default = httpx2.HTTPTransport(**setup.transport_options)
        install_backend(default, is_async=False)
        inner = default
    observed = InstrumentedTransport(
        contract=setup.contract, sinks=setup.sinks, inner=inner,
        secrets=setup.secrets, shape_sample_rate=setup.shape_rate,
    )  # fmt: skip
    metered = _MeteredTransport(setup.gate, observed, inner)
    client = httpx2.Client(transport=metered, **setup.client_kwargs)
    if transport is None:
        # An SDK client is rarely closed by its application: close our pool's sockets when
        # the client is collected, or at exit, rather than leaving them to the garbage
        # collector (a ResourceWarning each). Closing twice is harmless. A transport the
        # application passed is its own to close.
        weakref.finalize(client, _close_quietly, metered)
    return client


def ainstrument(
    *,
    contract: ContractLike = None,
    registry: CollectorRegistry | None = None,
    sinks: Sequence[SinkLike] = (),
    event_log: bool = True,
    shadow_rate: float | None = None,
    shape_sample_rate: float | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
    secrets: Sequence[str] = (),
    **client_kwargs: Any,
) -> httpx2.AsyncClient:
    """The async twin of ``instrument``: an ``httpx2.AsyncClient`` for ``openai.AsyncOpenAI``.

    Same arguments and behaviour; ``transport`` is an ``httpx2.AsyncBaseTransport``.
    """
    _check_transport("ainstrument", transport, httpx2.AsyncBaseTransport)
    setup = _setup(
        contract=contract, registry=registry, sinks=sinks, event_log=event_log,
        shadow_rate=shadow_rate, shape_sample_rate=shape_sample_rate,
        custom_transport=transport is not None, secrets=secrets, client_kwargs=client_kwargs,
    )  # fmt: skip
    inner = transport
    if inner is None:
        default = httpx2.AsyncHTTPTransport(**setup.transport_options)
        install_backend(default, is_async=True)
        inner = default
    observed = AsyncInstrumentedTransport(
        contract=setup.contract, sinks=setup.sinks, inner=inner,
        secrets=setup.secrets, shape_sample_rate=setup.shape_rate,
    )  # fmt: skip
    metered = _AsyncMeteredTransport(setup.gate, observed, inner, owns_inner=transport is None)
    return httpx2.AsyncClient(transport=metered, **setup.client_kwargs)


def flush() -> int:
    """Deprecated, a no-op kept for one release: every call is now observed inline, before it
    returns, so there is nothing left to complete. Returns 0."""
    warnings.warn(
        "chatcontract.flush() is deprecated and does nothing: every call is observed inline "
        "when it completes; remove the call",
        DeprecationWarning,
        stacklevel=2,
    )
    return 0


def _close_quietly(transport: httpx2.BaseTransport) -> None:
    with contextlib.suppress(Exception):  # at exit, a failed close must not print
        transport.close()


def check_sdk_client(sdk_client: object, contract: ContractLike = None) -> list[str]:
    """Problems in an openai SDK client's settings under ``contract``, as sentences (or none).

    Checks the SDK's ``max_retries`` against the contract's retry policy (stacked layers
    multiply attempts) and its per-attempt ``timeout`` times its attempts against the
    contract's single deadline (``policy.timeouts.total_ms``).

    Example::

        for problem in check_sdk_client(openai.OpenAI(max_retries=2), contract):
            print(problem)
    """
    resolved = _resolve_contract(contract)
    problems: list[str] = []
    retries = getattr(sdk_client, "max_retries", None)
    policy = resolved.policy
    sdk_retries = retries if isinstance(retries, int) and not isinstance(retries, bool) else 0
    if sdk_retries > 0 and policy.retry.max_attempts > 1:
        worst = (sdk_retries + 1) * policy.retry.max_attempts
        problems.append(
            f"the openai SDK client retries (max_retries={sdk_retries}) under a contract policy "
            f"that also retries (policy.retry.max_attempts={policy.retry.max_attempts}): up to "
            f"{worst} attempts per call; set max_retries=0 on the SDK client"
        )
    if not hasattr(sdk_client, "timeout"):
        return problems
    per_attempt = _timeout_seconds(sdk_client.timeout)
    deadline_s = policy.timeouts.total_ms / 1000.0
    attempts = sdk_retries + 1
    if per_attempt is None:
        problems.append(
            f"the openai SDK client has no timeout: a silent upstream holds a call forever; "
            f"pass timeout={deadline_s:g} (the contract's policy.timeouts.total_ms) to the client"
        )
    elif per_attempt * attempts > deadline_s:
        problems.append(
            f"the openai SDK client may wait {per_attempt:g} s per attempt over {attempts} "
            f"attempt(s) ({per_attempt * attempts:g} s), beyond the contract's deadline "
            f"policy.timeouts.total_ms={policy.timeouts.total_ms}; pass "
            f"timeout={deadline_s / attempts:g} to the SDK client"
        )
    return problems


def _timeout_seconds(timeout: object) -> float | None:
    """The longest wait of an SDK timeout setting (a number or an ``httpx2.Timeout``)."""
    if isinstance(timeout, bool):
        return None
    if isinstance(timeout, int | float):
        return float(timeout)
    if isinstance(timeout, httpx2.Timeout):
        values = [timeout.connect, timeout.read, timeout.write, timeout.pool]
        numbers = [float(v) for v in values if v is not None]
        return max(numbers) if len(numbers) == len(values) else None
    return None
