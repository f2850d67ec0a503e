"""The probe process's HTTP surface: ``/metrics``, ``/healthz``, ``/livez``, ``/api/summary``, the
dashboard.

``/healthz`` is for health checkers and load balancers: 200 ``{"status": "ok"}`` while the
store answers and accepts writes; 503 ``{"status": "degraded", "storage": {...}}`` while writes
fail (disk full: probes still run and ``/metrics`` still serves, but history is lost) and 503
``{"status": "unavailable"}`` when the store does not answer at all. ``/livez`` is 200 while
the process serves HTTP: point a liveness check (which restarts the process) there, since a
restart does not free a disk.

An app factory: the store, the Prometheus registry, the clock and the contract are given, so
several apps (tests, benchmarks) live side by side in one process.

Example::

    app = create_probe_app(store=store, registry=CollectorRegistry(), clock=time.time,
                           contract=contract, metrics=metrics)
    uvicorn.run(app, host="127.0.0.1", port=9464)
"""

from __future__ import annotations

import datetime as dt
import importlib
import sqlite3
from collections.abc import Callable

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from chatcontract.contract import Contract

from .cost import utc_day
from .metrics import ProbeMetrics
from .schedule import Clock
from .store import ProbeStore
from .summary import (
    DEFAULT_WINDOW_HOURS,
    MAX_WINDOW_HOURS,
    TargetSummary,
    build_summary,
    summary_target,
    target_identity,
)

__all__ = ["create_probe_app"]

_NO_STORE = {"Cache-Control": "no-store"}

_MINIMAL_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chatcontract probe</title></head>
<body><h1>chatcontract probe</h1>
<p>The dashboard is not installed. Contract health: <a href="api/summary">api/summary</a>,
metrics: <a href="metrics">metrics</a>.</p></body></html>
"""


def _json(data: object, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(data),
        status_code=status_code,
        media_type="application/json",
        headers=_NO_STORE,
    )


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    text = dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z"  # as /api/summary writes times


def _dashboard_routes() -> list[BaseRoute] | None:
    try:
        module = importlib.import_module("chatcontract.probe.dashboard")
    except ImportError:
        return None
    factory = getattr(module, "dashboard_routes", None)
    if factory is None:
        return None
    routes: list[BaseRoute] = list(factory())
    return routes


def create_probe_app(
    *,
    store: ProbeStore,
    registry: CollectorRegistry,
    clock: Clock,
    contract: Contract,
    target: TargetSummary | None = None,
    metrics: ProbeMetrics | None = None,
    unrecorded_spend: Callable[[str], float] | None = None,
) -> Starlette:
    """The probe ASGI app.

    Args:
        store: the probe history (``/api/summary`` and ``/healthz`` read it).
        registry: exposed as-is on ``/metrics``.
        clock: epoch seconds now.
        contract: names, review date, cost cap.
        target: what is probed (default: the contract's endpoint and model).
        metrics: the probe series already on ``registry`` (the prober's); when omitted they
            are registered here and restored from the store.
        unrecorded_spend: the prober's spend the store refused on a UTC day
            (``Prober.unrecorded_spend``), so the page's cost and pause say what the prober
            counts while the disk is full.
    """
    shown_target = target or summary_target(
        contract.endpoint.base_url, simulated=False, model=contract.model
    )
    identity = target_identity(shown_target)
    if metrics is None:
        metrics = ProbeMetrics(registry, contract=contract)
        metrics.restore(store, target=identity.key)

    def metrics_endpoint(_request: Request) -> Response:
        if not store.closed:
            metrics.refresh(store)
        return Response(
            generate_latest(registry), media_type=CONTENT_TYPE_LATEST, headers=_NO_STORE
        )

    def healthz(_request: Request) -> Response:
        if not store.ping():
            return _json(
                {"status": "unavailable", "reason": "the probe store does not answer"},
                status_code=503,
            )
        health = store.health()
        if health.writable:
            return _json({"status": "ok"})
        storage = {
            "writable": False,
            "error": health.error,
            "reason": health.reason,
            "since": _iso(health.since),
            "failed_writes": sum(health.failed_writes.values()),
            "path": store.path,
        }
        return _json(
            {
                "status": "degraded",
                "reason": f"the probe store refuses writes ({health.error}): probes run, "
                "history is not recorded",
                "storage": storage,
            },
            status_code=503,
        )

    def livez(_request: Request) -> Response:
        return _json({"status": "ok"})

    def summary(request: Request) -> Response:
        raw = request.query_params.get("hours", str(DEFAULT_WINDOW_HOURS))
        try:
            hours = int(raw)
        except ValueError:
            hours = 0
        if not 1 <= hours <= MAX_WINDOW_HOURS:
            return _json(
                {"error": f"hours must be a whole number from 1 to {MAX_WINDOW_HOURS}"},
                status_code=400,
            )
        now = clock()
        extra = 0.0 if unrecorded_spend is None else unrecorded_spend(utc_day(now))
        try:
            data = build_summary(
                store,
                contract=contract,
                target=shown_target,
                now=now,
                hours=hours,
                unrecorded_spend_usd=extra,
            )
        except sqlite3.Error:
            return _json({"error": "the probe store does not answer"}, status_code=503)
        return _json(data)

    async def minimal_page(_request: Request) -> Response:
        return HTMLResponse(_MINIMAL_PAGE)

    routes: list[BaseRoute] = [
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/livez", livez, methods=["GET"]),
        Route("/api/summary", summary, methods=["GET"]),
    ]
    dashboard = _dashboard_routes()
    routes.extend(
        dashboard if dashboard is not None else [Route("/", minimal_page, methods=["GET"])]
    )
    known = ", ".join(sorted({route.path for route in routes if isinstance(route, Route)}))

    async def http_error(request: Request, exc: Exception) -> Response:
        # Starlette's own 404 and 405 are plain text; every other answer here is JSON.
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        headers = dict(getattr(exc, "headers", None) or {})
        path = request.url.path[:200]
        if status == 404:
            message = f"no path {path!r} here: use {known}"
        elif status == 405:
            message = f"{request.method} is not allowed on {path}: use {headers.get('Allow')}"
        else:
            message = str(getattr(exc, "detail", "error"))
        response = _json({"error": message}, status_code=status)
        response.headers.update(headers)
        return response

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.metrics = metrics
    return app
