"""Serving the gateway: the HTTP server choice (one function), a background server for tests
and embedding, and the foreground ``serve`` the CLI runs.

The server is uvicorn with its ``httptools`` parser and ``uvloop`` when those are installed (the
``gateway`` extra), else ``h11`` and asyncio
(``server_config``); swapping the server (e.g. for granian) means changing that function and
``GatewayServer._run`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.util
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Self

import uvicorn

from chatcontract._http_guard import capped
from chatcontract._listen import Served, is_loopback, listen_socket
from chatcontract._log import get_logger, library_logger
from chatcontract._server_thread import ServerThread
from chatcontract.errors import ConfigError

from ._guard import GuardedH11Protocol, GuardedHttpToolsProtocol, limit_invalid_request_logs
from .app import GatewayApp
from .state import default_max_connections

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "GatewayServer",
    "bind",
    "is_loopback",
    "log_to_stderr",
    "serve",
    "server_config",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8788
_BACKLOG = 2048
_POLL_S = 0.01


def http_parser() -> str:
    """uvicorn's HTTP implementation: ``httptools`` if installed (faster), else ``h11``."""
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


def event_loop() -> str:
    """uvicorn's event loop: ``uvloop`` if installed (the ``gateway`` extra), else asyncio."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def server_config(app: GatewayApp, *, log_level: str = "warning") -> uvicorn.Config:
    """The uvicorn configuration the gateway runs with (no access log, no server header; its
    HTTP protocol bounds each request's head and body in time, the head in size, and the
    connections open at once to the state's ``max_connections``: ``_guard``)."""
    protocol = GuardedHttpToolsProtocol if http_parser() == "httptools" else GuardedH11Protocol
    limit_invalid_request_logs(library_logger("uvicorn.error"))
    # Any ASGI app serves (tests serve scripted upstreams): without a gateway's state, the
    # default cap.
    cap = getattr(getattr(app, "state", None), "max_connections", None)
    return uvicorn.Config(
        app,
        http=capped(protocol, default_max_connections() if cap is None else cap),
        loop=event_loop(),
        lifespan="on",
        log_level=log_level,
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a ``ConfigError`` saying what to do."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--listen port must be between 0 and 65535, got {port}")
    try:
        return listen_socket(host.strip("[]"), port, backlog=_BACKLOG)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use: pick another with --listen HOST:PORT "
                "or stop the other process"
            ) from exc
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}): pick another --listen"
        ) from exc


class GatewayServer(Served):
    """The gateway served by uvicorn on a background thread (tests, embedding).

    Example::

        with GatewayServer(create_app(state)) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="...")
    """

    def __init__(
        self,
        app: GatewayApp,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        startup_timeout_s: float = 10.0,
        shutdown_timeout_s: float = 10.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self._runner: ServerThread | None = None

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ``http://HOST:PORT/v1``."""
        return f"{self.root_url}/v1"

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The server thread's event loop, once it runs."""
        return None if self._runner is None else self._runner.loop

    def start(self) -> Self:
        """Bind, start uvicorn, wait (bounded) until it accepts requests."""
        if self._runner is not None:
            raise RuntimeError("this GatewayServer was already started; make a new one")
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        runner = ServerThread(server_config(self.app), sock, f"chatcontract-gateway-{self.port}")
        self._runner = runner
        runner.start_or_raise(
            self.startup_timeout_s, RuntimeError, f"the gateway did not start on {self.root_url}"
        )
        return self

    def stop(self) -> None:
        """Stop uvicorn and wait (bounded) for the thread to end."""
        if self._runner is not None:
            self._runner.stop(self.shutdown_timeout_s)


class _ForegroundServer(uvicorn.Server):
    """uvicorn's server, stopping gracefully on SIGINT/SIGTERM and then returning (uvicorn
    raises the signal again after its shutdown, which would end the process before the CLI
    says it stopped and exits 0). ``on_ready`` is called once it accepts requests, with the
    signal handlers in place."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._on_ready is not None and not self.should_exit:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler ``serve`` gives the gateway's logger (once per process)."""


def log_to_stderr() -> None:
    """The gateway's own warnings and errors (a failure's traceback: what a ``gateway_error``
    answer points to) on stderr, beside uvicorn's. The package's loggers have only a
    ``NullHandler`` (a library does not print), so without this a served gateway says
    nothing of what went wrong. Idempotent."""
    logger = get_logger("chatcontract.gateway")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)


def serve(
    app: GatewayApp,
    sock: socket.socket,
    *,
    on_ready: Callable[[], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve on ``sock`` in the foreground until Ctrl-C or SIGTERM, then shut down cleanly;
    ``on_ready`` is called once requests are accepted. The gateway's own warnings and errors
    go to stderr (``log_to_stderr``)."""
    log_to_stderr()
    config = server_config(app, log_level=log_level)
    _ForegroundServer(config, on_ready).run(sockets=[sock])
