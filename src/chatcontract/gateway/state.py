"""``GatewayState``: everything one gateway process holds between requests, in one object.

The chat app reads and updates it on every request; an admin app (``/metrics``, ``/healthz``,
``/readyz``, the kill switch) reads the same object. It is per process: with several replicas
each has its own breakers, budget guard and kill switch flag; ``--workers`` workers share the
budget spend and the kill switch (``spend_store``, ``kill_switch_flag``: see ``workers.py``).
"""

from __future__ import annotations

import hmac
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

import anyio
import httpx2

from chatcontract.client._routes import Route
from chatcontract.contract import Contract
from chatcontract.policy import BudgetGuard, kill_switch_active
from chatcontract.policy.breaker import Breakers, RouteHealth
from chatcontract.policy.budget import SpendStore
from chatcontract.telemetry.events import TelemetrySink

from ._wire import upstream_transport
from .request import RouteTable
from .upstream import GatewayUpstream

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_SHAPE_SAMPLE_RATE",
    "MAX_CONNECTIONS_LIMIT",
    "Flag",
    "GatewayState",
    "LocalFlag",
    "default_max_connections",
]

#: The largest request body accepted by default (4 MiB; larger gets 413).
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
#: The share of successful calls whose shapes are fingerprinted (a sample is enough for drift).
DEFAULT_SHAPE_SAMPLE_RATE = 0.01


#: The largest --max-connections accepted.
MAX_CONNECTIONS_LIMIT = 1_000_000


def default_max_connections() -> int:
    """The client port's connection cap when none is given: half the process's open-file
    limit (each client connection may hold one upstream), less 64 for its own files (the
    admin port, the logs, the shared store), and at least 16."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS_LIMIT
    return min(MAX_CONNECTIONS_LIMIT, max(16, (soft - 64) // 2))


class Flag(Protocol):
    """An on/off value: the admin kill switch (``LocalFlag``, or one shared by workers)."""

    value: bool


class LocalFlag:
    """A ``Flag`` held by this process."""

    def __init__(self) -> None:
        self.value = False


class GatewayState:
    """The shared per-process state of one gateway.

    Args:
        contract: the contract every call follows.
        keys: the gateway keys clients must present (``Authorization: Bearer KEY``); empty:
            no key is asked for (loopback only, the CLI enforces it).
        environ: where the provider keys, the model override and the kill switch variable are
            read (default: the live ``os.environ``).
        telemetry_sinks: receive every Exchange and client event (metrics, event log).
        transport: the upstream httpx2 transport (tests); default: aiohttp's wire when
            aiohttp is installed (one transport for every route), else httpx2's, per route.
        max_body_bytes: the request body size limit (413 above it).
        max_connections: the most client connections served at once (one more gets a 503 and
            is closed; ``chatcontract gateway --max-connections``); default: from the
            process's open-file limit (``default_max_connections``).
        shape_sample_rate: the fraction of successful calls whose request and response shapes
            are fingerprinted for drift detection (failures always are); fingerprinting every
            stream would cost more than the rest of the gateway's work on it.
        clock, rng, sleep: injected into the client core (tests).
        spend_store: where the budget guard keeps its spend (default: this process's own;
            ``--workers`` passes one shared by every worker).
        kill_switch_flag: where the admin kill switch is held (default: this process's own).

    Attributes:
        upstream: the client driving the ``CallPlan`` for every call.
        table: the routes by model and name (``model`` and ``fallbacks`` name them).
        kill_switch: the admin switch (on: every call skips its first route, as the contract's
            kill switch variable does; a client request can never set it).
        in_flight: chat requests being served now.
        queued: of those, the ones waiting before their next attempt (a backoff or a
            provider's ``retry-after``): held by the gateway, nothing on the wire.
        served: chat requests answered since start (any status).

    Raises:
        ConfigError: a provider key is missing from the environment.
    """

    def __init__(
        self,
        contract: Contract,
        *,
        keys: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
        telemetry_sinks: Sequence[TelemetrySink] = (),
        transport: httpx2.AsyncBaseTransport | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_connections: int | None = None,
        shape_sample_rate: float = DEFAULT_SHAPE_SAMPLE_RATE,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        spend_store: SpendStore | None = None,
        kill_switch_flag: Flag | None = None,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        if max_connections is None:
            max_connections = default_max_connections()
        if not 1 <= max_connections <= MAX_CONNECTIONS_LIMIT:
            raise ValueError(f"max_connections must be from 1 to {MAX_CONNECTIONS_LIMIT}")
        self.max_connections = max_connections
        self.contract = contract
        self.queued = 0

        async def wait(seconds: float) -> None:
            self.queued += 1
            try:
                await sleep(seconds)
            finally:
                self.queued -= 1

        self._own_transport = upstream_transport() if transport is None else None
        if self._own_transport is not None:
            transport = self._own_transport
        self._clock = clock
        self.upstream = GatewayUpstream(
            contract,
            shape_sample_rate=shape_sample_rate,
            environ=environ,
            telemetry_sinks=telemetry_sinks,
            transport=transport,
            clock=clock,
            rng=rng,
            sleep=wait,
        )
        if spend_store is not None:  # the caps hold for everyone sharing the store
            core = self.upstream._core
            core.guard = BudgetGuard(
                contract.policy.caps, contract.policy.prices, clock=clock, store=spend_store
            )
        self.table = RouteTable(self.upstream.routes)
        self._keys = tuple(key.encode() for key in keys if key)
        self.max_body_bytes = max_body_bytes
        self._kill_switch: Flag = kill_switch_flag if kill_switch_flag is not None else LocalFlag()
        self.in_flight = 0
        self.served = 0

    # -- what the apps read ----------------------------------------------------------------

    @property
    def routes(self) -> tuple[Route, ...]:
        """Primary first, then the fallbacks (secrets hidden from their repr)."""
        return self.upstream.routes

    @property
    def breakers(self) -> Breakers:
        """The routes' circuit breakers (shared by every call of this process)."""
        return self.upstream._core.breakers

    @property
    def guard(self) -> BudgetGuard:
        """The budget guard (caps per call and per day, for this process)."""
        return self.upstream._core.guard

    @property
    def kill_switch(self) -> bool:
        """The admin switch (set by the admin port only; see the class docstring)."""
        return self._kill_switch.value

    @kill_switch.setter
    def kill_switch(self, on: bool) -> None:
        self._kill_switch.value = on

    @property
    def requires_key(self) -> bool:
        """Whether clients must present a gateway key."""
        return bool(self._keys)

    def kill_switch_on(self) -> bool:
        """The admin switch or the contract's kill switch variable."""
        policy = self.contract.policy
        return self.kill_switch or kill_switch_active(policy, self.upstream._core.environ)

    def route_health(self) -> tuple[RouteHealth, ...]:
        """Each route's breaker state, read without claiming a trial call."""
        return self.breakers.snapshot(route.name for route in self.routes)

    def ready(self) -> bool:
        """At least one route takes calls: its breaker is not open, or its cool-down has
        passed (the next call is its trial). No call is made to decide."""
        now = self._clock()
        return any(
            health.state != "open" or (health.open_until is not None and health.open_until <= now)
            for health in self.route_health()
        )

    # -- what the chat app does ------------------------------------------------------------

    def key_ok(self, presented: bytes | None) -> bool:
        """Whether ``presented`` is one of the gateway keys, compared in constant time
        (every key is compared, whatever matched)."""
        if presented is None:
            return False
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(presented, key)
        return ok

    async def aclose(self) -> None:
        """Close the upstream connection pools."""
        await self.upstream.aclose()
        if self._own_transport is not None:  # shared by the routes: not theirs to close
            await self._own_transport.aclose()
