"""The gateway's admin port: ``/metrics``, ``/healthz``, ``/readyz``, ``/workers`` and the kill
switch, a raw ASGI app on its own listener (default ``127.0.0.1:9465``), never on the client
port.

- ``GET /metrics``: every ``llm_*`` family ``ChatClient`` emits (``PrometheusSink``) plus the
  gateway gauges (``GatewayMetrics``); with ``--workers``, every worker's scrape added up.
- ``GET /healthz``: 200 ``{"status": "ok", ...}`` while the process answers (liveness).
- ``GET /readyz``: 200 when the contract loaded and at least one route is not held open by its
  breaker (``GatewayState.ready()``), else 503; no upstream call is made to decide.
- ``GET /kill-switch``: ``{"on": ..., "env": ..., "effective": ...}``; ``POST /kill-switch``
  with ``{"on": true|false}`` sets it: while on, every call skips its first route, as the
  contract's kill switch variable does. A POST a browser sends (it has an ``Origin`` or
  ``Sec-Fetch-Site`` header) is refused with 403: the port has no authentication, and any page
  the operator opens could otherwise post to ``127.0.0.1`` (a form or a ``no-cors`` fetch needs
  no CORS preflight) and turn the switch.
- ``GET /workers``: each worker's pid, in-flight and served counts.

What it reads comes from an ``AdminSource``: ``LocalAdmin`` (one process: the state itself)
or the ``--workers`` supervisor (which asks every worker).
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import anyio.to_thread
import orjson
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from chatcontract._http_guard import guarded_protocol
from chatcontract._listen import Served, listen_socket
from chatcontract._server_thread import ServerThread
from chatcontract.errors import ConfigError
from chatcontract.policy import kill_switch_active

from .state import GatewayState

__all__ = [
    "ADMIN_PATHS",
    "DEFAULT_ADMIN",
    "AdminApp",
    "AdminServer",
    "AdminSource",
    "LocalAdmin",
    "Readiness",
    "bind_admin",
]

#: The admin listener's default address.
DEFAULT_ADMIN = "127.0.0.1:9465"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Allowed methods per admin path.
ADMIN_PATHS: dict[str, tuple[str, ...]] = {
    "/metrics": ("GET",),
    "/healthz": ("GET",),
    "/readyz": ("GET",),
    "/kill-switch": ("GET", "POST"),
    "/workers": ("GET",),
}
_MAX_BODY = 1024
#: The most connections the admin port keeps open at once (its scrapers and health checks; it
#: shares the gateway process's file descriptors with the client port).
MAX_ADMIN_CONNECTIONS = 64
# Headers only a browser sends: the origin of the page that made the request.
_BROWSER_HEADERS = frozenset({b"origin", b"sec-fetch-site"})
_JSON = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class Readiness:
    """What ``/readyz`` answers: ``ready``, each route's breaker state, and why not."""

    ready: bool
    routes: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""


class AdminSource(Protocol):
    """What the admin app reads and sets (calls may block: the app runs them on a thread)."""

    def metrics(self) -> bytes:
        """The Prometheus text exposition."""
        ...

    def readiness(self) -> Readiness:
        """Whether calls can be served (no upstream call is made)."""
        ...

    def workers(self) -> list[dict[str, Any]]:
        """Each worker process: ``pid``, ``in_flight``, ``queued``, ``served``, ``ready``."""
        ...

    def kill_switch(self) -> dict[str, bool]:
        """``on`` (the admin switch), ``env`` (the contract's variable), ``effective``."""
        ...

    def set_kill_switch(self, on: bool) -> None:
        """Turn the admin switch on or off (for every worker)."""
        ...


class LocalAdmin:
    """The admin source of a one-process gateway: its ``GatewayState`` and registry."""

    def __init__(self, state: GatewayState, registry: CollectorRegistry) -> None:
        self.state = state
        self.registry = registry

    def metrics(self) -> bytes:
        return generate_latest(self.registry)

    def readiness(self) -> Readiness:
        return readiness_of(self.state)

    def workers(self) -> list[dict[str, Any]]:
        return [worker_facts(self.state)]

    def kill_switch(self) -> dict[str, bool]:
        return kill_switch_facts(self.state)

    def set_kill_switch(self, on: bool) -> None:
        self.state.kill_switch = on


def readiness_of(state: GatewayState) -> Readiness:
    """``state``'s readiness, with each route's breaker (read without claiming a trial)."""
    routes = [{"route": health.route, "breaker": health.state} for health in state.route_health()]
    if any(route["breaker"] != "open" for route in routes):
        return Readiness(True, routes)
    return Readiness(False, routes, "every route's circuit breaker is open")


def worker_facts(state: GatewayState) -> dict[str, Any]:
    """One process's counts for ``/workers``."""
    return {
        "pid": os.getpid(),
        "in_flight": state.in_flight,
        "queued": state.queued,
        "served": state.served,
        "ready": state.ready(),
    }


def kill_switch_facts(state: GatewayState) -> dict[str, bool]:
    """The admin switch, the contract's variable, and whether calls skip their first route."""
    env = kill_switch_active(state.contract.policy, state.upstream._core.environ)
    return {"on": state.kill_switch, "env": env, "effective": state.kill_switch or env}


class AdminApp:
    """The admin port's raw ASGI app (see the module docstring)."""

    def __init__(self, source: AdminSource) -> None:
        self.source = source
        self.started = time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        methods = ADMIN_PATHS.get(path)
        if methods is None:
            known = ", ".join(ADMIN_PATHS)
            await _json(send, 404, {"error": f"no admin path {path[:200]!r}: use {known}"})
            return
        if method not in methods:
            allow = ", ".join(methods)
            await _json(
                send,
                405,
                {"error": f"{method} is not allowed on {path}: use {allow}"},
                [(b"allow", allow.encode())],
            )
            return
        source = self.source
        if path == "/metrics":
            body = await anyio.to_thread.run_sync(source.metrics)
            await _send(send, 200, body, (b"content-type", CONTENT_TYPE_LATEST.encode()))
        elif path == "/healthz":
            uptime = round(time.monotonic() - self.started, 3)
            await _json(send, 200, {"status": "ok", "pid": os.getpid(), "uptime_s": uptime})
        elif path == "/readyz":
            ready = await anyio.to_thread.run_sync(source.readiness)
            doc: dict[str, Any] = {"ready": ready.ready, "routes": ready.routes}
            if ready.reason:
                doc["reason"] = ready.reason
            await _json(send, 200 if ready.ready else 503, doc)
        elif path == "/workers":
            await _json(send, 200, {"workers": await anyio.to_thread.run_sync(source.workers)})
        elif method == "GET":  # /kill-switch
            await _json(send, 200, await anyio.to_thread.run_sync(source.kill_switch))
        elif _from_a_browser(scope):
            await _json(
                send,
                403,
                {
                    "error": "the kill switch is not set from a browser page (the admin port "
                    "has no authentication): POST it with curl or a script, without an "
                    "Origin header"
                },
            )
        else:
            on = await _switch_value(receive)
            if on is None:
                await _json(
                    send,
                    400,
                    {"error": 'send a JSON body {"on": true} or {"on": false}'},
                )
                return
            await anyio.to_thread.run_sync(source.set_kill_switch, on)
            await _json(send, 200, await anyio.to_thread.run_sync(source.kill_switch))


def _from_a_browser(scope: Scope) -> bool:
    """Whether a browser sent the request (it names the page's origin)."""
    return any(name in _BROWSER_HEADERS for name, _ in scope["headers"])


async def _switch_value(receive: Receive) -> bool | None:
    """``on`` from a ``{"on": true|false}`` body (at most 1 KiB); None for anything else."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > _MAX_BODY:
            return None
        if not message.get("more_body", False):
            break
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or set(doc) != {"on"} or not isinstance(doc["on"], bool):
        return None
    return bool(doc["on"])


async def _json(
    send: Send, status: int, doc: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _send(send, status, orjson.dumps(doc), _JSON, extra)


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: tuple[bytes, bytes],
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [content_type, (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bind_admin(host: str, port: int) -> socket.socket:
    """The admin listener, or a ``ConfigError`` saying what to do."""
    try:
        return listen_socket(host, port, backlog=64)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"admin port {port} on {host} is in use: pick another with --admin HOST:PORT, "
                "or --admin off"
            ) from exc
        raise ConfigError(
            f"cannot listen on {host}:{port} for the admin port ({exc.strerror}): "
            "pick another --admin HOST:PORT"
        ) from exc


class AdminServer(Served):
    """The admin app served by uvicorn on a background thread, on an already bound socket.

    It runs beside the chat server (its own thread and event loop, so a slow scrape never
    holds a chat request); signals stay with the main thread.
    """

    def __init__(self, app: AdminApp, sock: socket.socket, *, startup_timeout_s: float = 10.0):
        self.app = app
        self.sock = sock
        self.host, self.port = sock.getsockname()[:2]
        self.startup_timeout_s = startup_timeout_s
        config = uvicorn.Config(
            app,
            http=guarded_protocol(max_connections=MAX_ADMIN_CONNECTIONS),
            lifespan="on",
            log_level="warning",
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self._runner = ServerThread(config, sock, f"chatcontract-gateway-admin-{self.port}")

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        """Start serving; wait (bounded) until it accepts requests."""
        if not self._runner.start(self.startup_timeout_s):
            self.stop()
            raise ConfigError(f"the admin port did not start on {self.root_url}")
        return self

    def stop(self) -> None:
        """Stop serving and wait (bounded) for the thread."""
        self._runner.stop(5.0)
