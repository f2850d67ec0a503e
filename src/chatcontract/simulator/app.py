"""The ASGI app: routes, authentication, control headers, and the answer for each scenario.

Request order, as the real gateway: control headers (the simulator's own, checked first because a
typo there is the test author's mistake) → authentication (before the body is even read, so a bad
key with a broken body is a 401) → validation in the flavor's order → the scenario.

Routes:

- ``POST /v1/chat/completions``: the chat endpoint, non-streaming and streaming.
- ``GET /v1/models``: the flavor's catalogue in OpenAI list shape (authentication required).
- any other ``/v1/...`` path or method: 404 ``Invalid URL (METHOD /path)``, no authentication.
- any other path: cometapi answers the web console's HTML page (200), openai the 404 above.

- ``POST /_chatcontract/reset``: forget the per-scenario state (counts and windows of the
  ``*_once``, retry-after and outage scenarios); no authentication, it is the test's control.

Control headers (each overrides the server's setting for one request): ``X-Chatcontract-
Scenario``, ``-Delay-Ms`` (the timing scenarios' delay, or a fault window), ``-Time-Scale``
(every duration times this factor: ``0.01`` plays a 60 s outage in 0.6 s), ``-After-Tokens``
(where a cut, stall, malformed event or in-band error happens), ``-State-Key`` (separate
counts and windows, e.g. per test), ``-Scenario-Models`` (comma-separated: the scenario applies
only to requests for these models; others get ``ok``).

Every response carries the flavor's request-id header (``X-Oneapi-Request-Id`` or
``x-request-id``).
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from chatcontract.errors import SimulatorError
from chatcontract.simulator.answers import (
    Reply,
    answer_for,
    completion_body,
    prompt_tokens,
    stream_chunks,
)
from chatcontract.simulator.connection import Release
from chatcontract.simulator.delivery import (
    SCRIPTED_BODY_DELIVERIES,
    Plan,
    ScriptedResponse,
    Start,
    plan_body,
    plan_stream,
)
from chatcontract.simulator.flavors import FLAVORS, SPA_PAGE, Flavor, IdSource, Situation, mask_key
from chatcontract.simulator.scenarios import (
    SCENARIO_NAMES,
    SCENARIOS,
    Delivery,
    Scenario,
    faulted,
)
from chatcontract.simulator.validation import ChatRequest, Problem, parse_chat_request

__all__ = [
    "AFTER_TOKENS_HEADER",
    "DEFAULT_API_KEY",
    "DELAY_HEADER",
    "MAX_DELAY_MS",
    "MAX_TIME_SCALE",
    "MIN_TIME_SCALE",
    "MODELS_HEADER",
    "RESET_PATH",
    "SCENARIO_HEADER",
    "STATE_KEY_HEADER",
    "TIME_SCALE_HEADER",
    "SimulatorApp",
    "SimulatorSettings",
    "create_app",
]

DEFAULT_API_KEY = "sk-chatcontract-local"
SCENARIO_HEADER = "X-Chatcontract-Scenario"
DELAY_HEADER = "X-Chatcontract-Delay-Ms"
TIME_SCALE_HEADER = "X-Chatcontract-Time-Scale"
AFTER_TOKENS_HEADER = "X-Chatcontract-After-Tokens"
STATE_KEY_HEADER = "X-Chatcontract-State-Key"
MODELS_HEADER = "X-Chatcontract-Scenario-Models"
RESET_PATH = "/_chatcontract/reset"
MAX_DELAY_MS = 600_000
#: The time scale multiplies every simulated duration: 0.001 (a thousand times faster) to 100.
MIN_TIME_SCALE = 0.001
MAX_TIME_SCALE = 100.0
MAX_AFTER_TOKENS = 100_000
DEFAULT_PING_INTERVAL_MS = 10_000

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _scenario_named(name: str) -> Scenario:
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise SimulatorError(
            f"unknown scenario {name!r}: choose one of {', '.join(SCENARIO_NAMES)} "
            "(see 'chatcontract simulate --list-scenarios')"
        )
    return scenario


def _flavor_named(name: str) -> Flavor:
    flavor = FLAVORS.get(name)
    if flavor is None:
        raise SimulatorError(f"unknown flavor {name!r}: choose one of {', '.join(FLAVORS)}")
    return flavor


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorSettings:
    """What one simulator serves.

    Args:
        flavor: whose behaviour to copy (``cometapi`` or ``openai``).
        api_key: the only key accepted.
        scenario: the default scenario (a request header can pick another).
        delay_ms: the delay for timing scenarios, or ``None`` for each scenario's default.
        ping_interval_ms: SSE keep-alive (``: PING``) interval during long stream waits.
        time_scale: every duration (delays, keep-alives, windows, retry-after) times this.
        after_tokens: where stream faults happen (after that many tokens; ``None``: half way).
        scenario_models: the scenario applies only to these models (empty: to every model).
    """

    flavor: Flavor
    api_key: str
    scenario: Scenario
    delay_ms: int | None = None
    ping_interval_ms: int = DEFAULT_PING_INTERVAL_MS
    time_scale: float = 1.0
    after_tokens: int | None = None
    scenario_models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.api_key or self.api_key != self.api_key.strip():
            raise SimulatorError(
                "the simulator's API key must be a non-empty string without spaces"
            )
        if self.delay_ms is not None and not 0 <= self.delay_ms <= MAX_DELAY_MS:
            raise SimulatorError(
                f"delay must be between 0 and {MAX_DELAY_MS} ms, got {self.delay_ms}"
            )
        if self.ping_interval_ms <= 0:
            raise SimulatorError(f"ping interval must be positive, got {self.ping_interval_ms} ms")
        if not _valid_scale(self.time_scale):
            raise SimulatorError(
                f"time scale must be a number from {MIN_TIME_SCALE} to {MAX_TIME_SCALE}, "
                f"got {self.time_scale}"
            )
        if self.after_tokens is not None and not 0 <= self.after_tokens <= MAX_AFTER_TOKENS:
            raise SimulatorError(
                f"after-tokens must be from 0 to {MAX_AFTER_TOKENS}, got {self.after_tokens}"
            )


def _valid_scale(value: float) -> bool:
    return math.isfinite(value) and MIN_TIME_SCALE <= value <= MAX_TIME_SCALE


@dataclass(frozen=True, slots=True)
class _Control:
    scenario: Scenario
    delay_s: float
    window_s: float
    time_scale: float
    after_tokens: int | None
    state_key: str
    models: tuple[str, ...]


@dataclass(slots=True)
class _ScenarioState:
    seen: int = 0
    first_at: float | None = None


@dataclass(slots=True)
class _Runtime:
    """Per-app mutable state: the id counter, the shutdown release and the per-scenario counts
    and windows. Never process-global."""

    ids: IdSource
    release: Release = field(default_factory=Release)
    monotonic: Callable[[], float] = time.monotonic
    states: dict[tuple[str, str], _ScenarioState] = field(default_factory=dict)

    def take(self, scenario: Scenario, key: str, window_s: float) -> bool:
        """Whether this request gets ``scenario``'s fault; counts it (one event loop: no lock)."""
        if scenario.fault_count is None and scenario.fault_window_ms is None:
            return True
        state = self.states.setdefault((scenario.name, key), _ScenarioState())
        now = self.monotonic()
        elapsed = None if state.first_at is None else now - state.first_at
        result = faulted(scenario, seen=state.seen, elapsed_s=elapsed, window_s=window_s)
        state.seen += 1
        if state.first_at is None:
            state.first_at = now
        return result


class SimulatorApp(Starlette):
    """The Starlette app ``create_app`` returns, with its settings and a shutdown hook."""

    settings: SimulatorSettings
    runtime: _Runtime

    def release_pending(self) -> None:
        """End every held or delayed request now (call in the serving event loop)."""
        self.runtime.release.release()


class _Handlers:
    """The endpoint functions, closed over one app's settings and runtime."""

    def __init__(self, settings: SimulatorSettings, runtime: _Runtime) -> None:
        self.settings = settings
        self.flavor = settings.flavor
        self.runtime = runtime
        self.ids = runtime.ids
        self._key = settings.api_key.encode()
        self._success_headers = dict(settings.flavor.success_headers)
        self._stream_headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
            *((k.encode(), v.encode()) for k, v in settings.flavor.success_headers),
        ]

    # --- building blocks ------------------------------------------------------------------------

    def _error(self, problem: Problem, request_id: str) -> Response:
        spec = self.flavor.errors[problem.situation]
        headers = {self.flavor.request_id_header: request_id, **dict(spec.headers)}
        if spec.content_type is not None:
            headers["content-type"] = spec.content_type
        return Response(spec.body(problem.params, request_id), spec.status, headers)

    def _auth_problem(self, headers: Headers) -> Problem | None:
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else authorization.strip()
        else:
            key = headers.get("x-api-key", "").strip()
        if not key:
            return Problem(situation=Situation.MISSING_KEY)
        if not hmac.compare_digest(key.encode(), self._key):
            return Problem(situation=Situation.INVALID_KEY, params={"key": mask_key(key)})
        return None

    def _control(self, headers: Headers) -> _Control | Problem:
        name = headers.get(SCENARIO_HEADER)
        scenario = self.settings.scenario
        if name is not None:
            chosen = SCENARIOS.get(name.strip())
            if chosen is None:
                detail = f"unknown scenario {name!r}; valid: {', '.join(SCENARIO_NAMES)}"
                return _bad_control(detail, SCENARIO_HEADER)
            scenario = chosen
        delay_ms = self.settings.delay_ms
        raw_delay = headers.get(DELAY_HEADER)
        if raw_delay is not None:
            delay_ms = _int_or_none(raw_delay, 0, MAX_DELAY_MS)
            if delay_ms is None:
                detail = (
                    f"{DELAY_HEADER} must be an integer from 0 to {MAX_DELAY_MS}, got {raw_delay!r}"
                )
                return _bad_control(detail, DELAY_HEADER)
        scale = self.settings.time_scale
        raw_scale = headers.get(TIME_SCALE_HEADER)
        if raw_scale is not None:
            try:
                scale = float(raw_scale)
            except ValueError:
                scale = math.nan
            if not _valid_scale(scale):
                detail = (
                    f"{TIME_SCALE_HEADER} must be a number from {MIN_TIME_SCALE} to "
                    f"{MAX_TIME_SCALE}, got {raw_scale!r}"
                )
                return _bad_control(detail, TIME_SCALE_HEADER)
        after = self.settings.after_tokens
        raw_after = headers.get(AFTER_TOKENS_HEADER)
        if raw_after is not None:
            after = _int_or_none(raw_after, 0, MAX_AFTER_TOKENS)
            if after is None:
                detail = (
                    f"{AFTER_TOKENS_HEADER} must be an integer from 0 to {MAX_AFTER_TOKENS}, "
                    f"got {raw_after!r}"
                )
                return _bad_control(detail, AFTER_TOKENS_HEADER)
        raw_models = headers.get(MODELS_HEADER)
        models = self.settings.scenario_models
        if raw_models is not None:
            models = tuple(m.strip() for m in raw_models.split(",") if m.strip())
        window_ms = delay_ms if delay_ms is not None else (scenario.fault_window_ms or 0)
        if delay_ms is None:
            delay_ms = scenario.default_delay_ms
        return _Control(
            scenario=scenario,
            delay_s=delay_ms / 1000 * scale,
            window_s=window_ms / 1000 * scale,
            time_scale=scale,
            after_tokens=after,
            state_key=headers.get(STATE_KEY_HEADER, "")[:200],
            models=models,
        )

    def _reply(self, request: ChatRequest, scenario: Scenario) -> Reply:
        answer = answer_for(request.messages, max_tokens=request.max_tokens)
        if scenario.answer is not None:
            answer = scenario.answer(answer)
        catalogue = self.flavor.catalogue
        model = catalogue.get(request.model)
        return Reply(
            id=self.ids.completion_id(),
            created=self.ids.clock() // 1_000_000_000,
            model=catalogue.response_model(request.model),
            fingerprint=model.fingerprint if model else "fp_0000000000",
            answer=answer,
        )

    # --- endpoints ------------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        request_id = self.flavor.new_request_id(self.ids)
        control = self._control(request.headers)
        if isinstance(control, Problem):
            return self._error(control, request_id)
        problem = self._auth_problem(request.headers)
        if problem is not None:
            return self._error(problem, request_id)
        try:
            body = await request.body()
        except ClientDisconnect:
            # The client left before its body was in (or the server's body deadline closed
            # the connection): nobody reads an answer, and it is no error of the simulator's.
            return Response(status_code=400)
        parsed = parse_chat_request(self.flavor, body)
        if isinstance(parsed, Problem):
            return self._error(parsed, request_id)
        scenario = control.scenario
        if not self._applies(scenario, control, parsed):
            scenario = SCENARIOS["ok"]
        if scenario.reply is not None:
            response = self._error(
                Problem(
                    situation=scenario.reply,
                    params={
                        "model": parsed.model,
                        "tokens": str(prompt_tokens(parsed.messages)),
                    },
                ),
                request_id,
            )
            response.headers.update(_retry_after_headers(scenario, control.window_s))
            return response
        if parsed.stream:
            return self._stream(parsed, scenario, control, request_id)
        return self._complete(parsed, scenario, control.delay_s, request_id)

    def _applies(self, scenario: Scenario, control: _Control, request: ChatRequest) -> bool:
        """Whether ``request`` gets ``scenario``'s fault (models, message test, counts)."""
        if control.models and request.model not in control.models:
            return False
        if scenario.only_if is not None and not scenario.only_if(request.messages):
            return False
        return self.runtime.take(scenario, control.state_key, control.window_s)

    async def reset(self, request: Request) -> Response:
        """Forget every scenario's counts and windows."""
        forgotten = len(self.runtime.states)
        self.runtime.states.clear()
        return Response(
            orjson.dumps({"reset": True, "forgotten": forgotten}),
            200,
            media_type="application/json",
        )

    def _complete(
        self, request: ChatRequest, scenario: Scenario, delay_s: float, request_id: str
    ) -> Response:
        delivery = scenario.delivery
        if delivery is Delivery.INBAND_ERROR:
            return self._error(Problem(situation=Situation.ERROR_IN_200), request_id)
        body = completion_body(self._reply(request, scenario))
        if scenario.body is not None:
            scenario.body(body)
        content = orjson.dumps(body)
        if delivery in (Delivery.BAD_JSON, Delivery.MALFORMED):
            content = content[: len(content) // 2]
        headers = {self.flavor.request_id_header: request_id, **self._success_headers}
        if delivery not in SCRIPTED_BODY_DELIVERIES:
            return Response(content, 200, headers, media_type="application/json")
        raw = Response(content, 200, headers, media_type="application/json").raw_headers
        plan = plan_body(delivery, start=Start(200, raw), body=content, delay_s=delay_s)
        return self._scripted(plan)

    def _stream(
        self, request: ChatRequest, scenario: Scenario, control: _Control, request_id: str
    ) -> Response:
        delay_s = control.delay_s
        if scenario.delivery in (Delivery.NO_RESPONSE, Delivery.RESET):
            plan = plan_body(scenario.delivery, start=Start(200, []), body=b"", delay_s=delay_s)
            return self._scripted(plan, control.time_scale)
        if scenario.delivery is Delivery.BAD_JSON:
            return self._complete(request, scenario, delay_s, request_id)
        chunks = stream_chunks(self._reply(request, scenario), include_usage=request.include_usage)
        if scenario.chunks is not None:
            scenario.chunks(chunks)
        events = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]
        error_event = b""
        if scenario.delivery is Delivery.INBAND_ERROR:
            error = self.flavor.errors[Situation.ERROR_IN_200]
            error_event = b"data: " + error.body({}, request_id) + b"\n\n"
        headers = [
            *self._stream_headers,
            (self.flavor.request_id_header.lower().encode(), request_id.encode()),
        ]
        plan = plan_stream(
            scenario.delivery,
            headers=headers,
            events=events,
            delay_s=delay_s,
            error_event=error_event,
            after_tokens=control.after_tokens,
        )
        return self._scripted(plan, control.time_scale)

    def _scripted(self, plan: Plan, time_scale: float | None = None) -> Response:
        scale = self.settings.time_scale if time_scale is None else time_scale
        return ScriptedResponse(
            plan,
            release=self.runtime.release,
            ping_interval_s=self.settings.ping_interval_ms / 1000 * scale,
        )

    async def models(self, request: Request) -> Response:
        request_id = self.flavor.new_request_id(self.ids)
        problem = self._auth_problem(request.headers)
        if problem is not None:
            return self._error(problem, request_id)
        headers = {self.flavor.request_id_header: request_id, **self._success_headers}
        return Response(
            self.flavor.catalogue.models_body, 200, headers, media_type="application/json"
        )

    async def fallback(self, request: Request) -> Response:
        request_id = self.flavor.new_request_id(self.ids)
        path = request.url.path
        is_api = path == "/v1" or path.startswith("/v1/")
        if self.flavor.html_for_unknown_paths and not is_api:
            headers = {self.flavor.request_id_header: request_id, "cache-control": "no-cache"}
            return Response(SPA_PAGE, 200, headers, media_type="text/html; charset=utf-8")
        params = {"method": request.method, "path": path}
        return self._error(Problem(situation=Situation.UNKNOWN_URL, params=params), request_id)


def _bad_control(detail: str, header: str) -> Problem:
    return Problem(situation=Situation.BAD_CONTROL, params={"detail": detail, "field": header})


def _int_or_none(text: str, low: int, high: int) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if low <= value <= high else None


def _retry_after_headers(scenario: Scenario, window_s: float) -> dict[str, str]:
    """The retry-after headers of a windowed 429: the (scaled) window, as the server asks."""
    if scenario.retry_after is None:
        return {}
    headers: dict[str, str] = {}
    if scenario.retry_after in ("both", "ms"):
        headers["retry-after-ms"] = str(max(0, round(window_s * 1000)))
    if scenario.retry_after in ("both", "seconds"):
        whole = window_s.is_integer()
        headers["retry-after"] = str(int(window_s)) if whole else f"{window_s:.3f}"
    return headers


def create_app(
    *,
    flavor: str = "cometapi",
    api_key: str = DEFAULT_API_KEY,
    scenario: str = "ok",
    delay_ms: int | None = None,
    ping_interval_ms: int = DEFAULT_PING_INTERVAL_MS,
    clock: Callable[[], int] = time.time_ns,
    time_scale: float = 1.0,
    after_tokens: int | None = None,
    scenario_models: tuple[str, ...] = (),
    monotonic: Callable[[], float] = time.monotonic,
) -> SimulatorApp:
    """Build a simulator app (Starlette, ASGI 3) that behaves like ``flavor``.

    Args:
        flavor: ``cometapi`` (the default) or ``openai``.
        api_key: the only key accepted (``Authorization: Bearer <key>`` or ``x-api-key``).
        scenario: the default scenario; the ``X-Chatcontract-Scenario`` header overrides it.
        delay_ms: the delay timing scenarios use, instead of each scenario's default;
            the ``X-Chatcontract-Delay-Ms`` header overrides it.
        ping_interval_ms: SSE ``: PING`` keep-alive interval during long stream waits.
        clock: unix time in nanoseconds, for ``created`` and request ids.
        time_scale: every duration times this factor (the ``X-Chatcontract-Time-Scale``
            header overrides it): ``0.01`` runs a 60 s outage in 0.6 s.
        after_tokens: stream faults happen after this many content tokens (default: half way).
        scenario_models: the scenario applies only to requests for these models.
        monotonic: the clock of the per-scenario windows (seconds).

    Raises:
        SimulatorError: an unknown flavor or scenario, or an out-of-range delay, time scale
            or token count.

    Example::

        app = create_app(flavor="cometapi", scenario="ok")
        transport = httpx2.ASGITransport(app=app)
    """
    settings = SimulatorSettings(
        flavor=_flavor_named(flavor),
        api_key=api_key,
        scenario=_scenario_named(scenario),
        delay_ms=delay_ms,
        ping_interval_ms=ping_interval_ms,
        time_scale=time_scale,
        after_tokens=after_tokens,
        scenario_models=tuple(scenario_models),
    )
    runtime = _Runtime(ids=IdSource(clock=clock), monotonic=monotonic)
    handlers = _Handlers(settings, runtime)
    app = SimulatorApp(
        routes=[
            Route("/v1/chat/completions", handlers.chat, methods=["POST"]),
            Route("/v1/models", handlers.models, methods=["GET"]),
            Route(RESET_PATH, handlers.reset, methods=["POST"]),
            Route("/{path:path}", handlers.fallback, methods=_ALL_METHODS),
        ]
    )
    app.router.redirect_slashes = False
    app.settings = settings
    app.runtime = runtime
    return app
