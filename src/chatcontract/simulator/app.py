"""The ASGI app: routes, authentication, control headers, and the answer for each scenario.

Request order, as the real gateway: control headers (the simulator's own, checked first because a
typo there is the test author's mistake) → authentication (before the body is even read, so a bad
key with a broken body is a 401) → validation in the flavor's order → the scenario.

Routes:

- ``POST /v1/chat/completions``: the chat endpoint, non-streaming and streaming.
- ``GET /v1/models``: the flavor's catalogue in OpenAI list shape (authentication required).
- any other ``/v1/...`` path or method: 404 ``Invalid URL (METHOD /path)``, no authentication.
- any other path: cometapi answers the web console's HTML page (200), openai the 404 above.

Every response carries the flavor's request-id header (``X-Oneapi-Request-Id`` or
``x-request-id``).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatcontract.errors import SimulatorError
from chatcontract.simulator.answers import Reply, answer_for, completion_body, stream_chunks
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
from chatcontract.simulator.scenarios import SCENARIO_NAMES, SCENARIOS, Delivery, Scenario
from chatcontract.simulator.validation import ChatRequest, Problem, parse_chat_request

__all__ = [
    "DEFAULT_API_KEY",
    "DELAY_HEADER",
    "MAX_DELAY_MS",
    "SCENARIO_HEADER",
    "SimulatorApp",
    "SimulatorSettings",
    "create_app",
]

DEFAULT_API_KEY = "sk-chatcontract-local"
SCENARIO_HEADER = "X-Chatcontract-Scenario"
DELAY_HEADER = "X-Chatcontract-Delay-Ms"
MAX_DELAY_MS = 600_000
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
    """

    flavor: Flavor
    api_key: str
    scenario: Scenario
    delay_ms: int | None = None
    ping_interval_ms: int = DEFAULT_PING_INTERVAL_MS

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


@dataclass(frozen=True, slots=True)
class _Control:
    scenario: Scenario
    delay_s: float


@dataclass(slots=True)
class _Runtime:
    """Per-app mutable state: the id counter and the shutdown release. Never process-global."""

    ids: IdSource
    release: Release = field(default_factory=Release)


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
                return Problem(
                    situation=Situation.BAD_CONTROL,
                    params={"detail": detail, "field": SCENARIO_HEADER},
                )
            scenario = chosen
        delay_ms = self.settings.delay_ms
        raw_delay = headers.get(DELAY_HEADER)
        if raw_delay is not None:
            try:
                delay_ms = int(raw_delay)
            except ValueError:
                delay_ms = -1
            if not 0 <= delay_ms <= MAX_DELAY_MS:
                detail = (
                    f"{DELAY_HEADER} must be an integer from 0 to {MAX_DELAY_MS}, got {raw_delay!r}"
                )
                return Problem(
                    situation=Situation.BAD_CONTROL,
                    params={"detail": detail, "field": DELAY_HEADER},
                )
        if delay_ms is None:
            delay_ms = scenario.default_delay_ms
        return _Control(scenario=scenario, delay_s=delay_ms / 1000)

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
        parsed = parse_chat_request(self.flavor, await request.body())
        if isinstance(parsed, Problem):
            return self._error(parsed, request_id)
        scenario = control.scenario
        if scenario.reply is not None:
            return self._error(
                Problem(situation=scenario.reply, params={"model": parsed.model}), request_id
            )
        if parsed.stream:
            return self._stream(parsed, scenario, control.delay_s, request_id)
        return self._complete(parsed, scenario, control.delay_s, request_id)

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
        self, request: ChatRequest, scenario: Scenario, delay_s: float, request_id: str
    ) -> Response:
        if scenario.delivery in (Delivery.NO_RESPONSE, Delivery.RESET):
            plan = plan_body(scenario.delivery, start=Start(200, []), body=b"", delay_s=delay_s)
            return self._scripted(plan)
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
        )
        return self._scripted(plan)

    def _scripted(self, plan: Plan) -> Response:
        return ScriptedResponse(
            plan,
            release=self.runtime.release,
            ping_interval_s=self.settings.ping_interval_ms / 1000,
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


def create_app(
    *,
    flavor: str = "cometapi",
    api_key: str = DEFAULT_API_KEY,
    scenario: str = "ok",
    delay_ms: int | None = None,
    ping_interval_ms: int = DEFAULT_PING_INTERVAL_MS,
    clock: Callable[[], int] = time.time_ns,
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

    Raises:
        SimulatorError: an unknown flavor or scenario, or an out-of-range delay.

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
    )
    runtime = _Runtime(ids=IdSource(clock=clock))
    handlers = _Handlers(settings, runtime)
    app = SimulatorApp(
        routes=[
            Route("/v1/chat/completions", handlers.chat, methods=["POST"]),
            Route("/v1/models", handlers.models, methods=["GET"]),
            Route("/{path:path}", handlers.fallback, methods=_ALL_METHODS),
        ]
    )
    app.router.redirect_slashes = False
    app.settings = settings
    app.runtime = runtime
    return app
