"""What every check gets: the target, an instrumented client, and a way to send one request.

Every request the suite sends carries ``X-Request-Source: synthetic-contract-probe``, a
harmless fixed prompt (with a marker the redaction check looks for), and a small token limit.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import orjson

from chatcontract.target import Target
from chatcontract.transport import Exchange, ExchangeSink, InstrumentedTransport

__all__ = ["SOURCE_HEADER", "CheckContext", "SuiteOptions"]

SOURCE_HEADER = ("X-Request-Source", "synthetic-contract-probe")

#: The simulator's per-request fault header: used only against the embedded simulator.
SCENARIO_HEADER = "X-Chatcontract-Scenario"
DELAY_HEADER = "X-Chatcontract-Delay-Ms"

CANARY_PROMPT = "Reply with exactly: pong"
CANARY_MAX_TOKENS = 16

#: Bounds of ``timeout_deadline_ms`` (the client_timeout check's deadline), in milliseconds.
MIN_DEADLINE_MS = 10.0
MAX_DEADLINE_MS = 60_000.0


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
        transport = InstrumentedTransport(
            contract=target.contract,
            sinks=[exchanges.append, *sinks],
            secrets=[target.secret],
            inner=inner,
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

    def send(
        self,
        body: Mapping[str, Any] | None = None,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
    ) -> Exchange:
        """Send one request, read the whole response, and return its Exchange."""
        count = len(self.exchanges)
        payload = content
        if payload is None:
            payload = orjson.dumps(dict(body if body is not None else self.fixture()))
        request = self.client.build_request(
            self.target.contract.endpoint.method,
            self.target.contract.endpoint.url,
            content=payload,
            headers=dict(headers if headers is not None else self.headers()),
            timeout=timeout if timeout is not None else httpx2.USE_CLIENT_DEFAULT,
        )
        try:
            response = self.client.send(request, stream=True)
            try:
                response.read()
            finally:
                response.close()
        except httpx2.HTTPError:
            pass  # the transport recorded the Exchange with its classification
        if len(self.exchanges) == count:  # pragma: no cover - the transport always records
            raise RuntimeError("the instrumented transport recorded no Exchange")
        return self.exchanges[-1]
