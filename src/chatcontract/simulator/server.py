"""Run the simulator with uvicorn in a background thread, for tests, the CLI and the demo.

``SimulatorServer`` binds the socket itself (so "port in use" is an immediate, clear error and
port 0 picks a free port), serves it with uvicorn on a private event loop in a daemon thread,
waits (bounded) until uvicorn is ready, and on exit releases any held request before asking
uvicorn to stop, so a pending ``no_response`` request never holds shutdown open.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Self

import uvicorn

from chatcontract._http_guard import guarded_protocol
from chatcontract._listen import Served, listen_socket
from chatcontract._server_thread import ServerThread
from chatcontract.errors import SimulatorError
from chatcontract.simulator.app import (
    DEFAULT_API_KEY,
    DEFAULT_PING_INTERVAL_MS,
    SimulatorApp,
    create_app,
)

__all__ = ["SimulatorServer", "serve"]

_POLL_S = 0.01
_BACKLOG = 2048


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a ``SimulatorError`` saying what to do."""
    if not 0 <= port <= 65535:
        raise SimulatorError(
            f"port must be between 0 and 65535, got {port}: pick another with --port"
        )
    try:
        return listen_socket(host, port, backlog=_BACKLOG)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SimulatorError(
                f"port {port} on {host} is in use: "
                "pick another with --port or stop the other process"
            ) from exc
        raise SimulatorError(
            f"cannot listen on {host}:{port} ({exc.strerror}): pick another --host or --port"
        ) from exc


class SimulatorServer(Served):
    """The simulator served by uvicorn on a background thread.

    Args:
        flavor, api_key, scenario, delay_ms, ping_interval_ms, time_scale, after_tokens,
            scenario_models: passed to ``create_app``.
        host: the interface to bind (loopback by default).
        port: the port; 0 picks a free one.
        app: serve this app instead of building one (the other app arguments are then ignored).
        startup_timeout_s: how long ``start()`` waits for uvicorn to be ready.
        shutdown_timeout_s: how long ``stop()`` waits for the server thread to end.

    Example::

        with SimulatorServer(flavor="cometapi") as server:
            client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)
    """

    def __init__(
        self,
        *,
        flavor: str = "cometapi",
        api_key: str = DEFAULT_API_KEY,
        scenario: str = "ok",
        delay_ms: int | None = None,
        ping_interval_ms: int = DEFAULT_PING_INTERVAL_MS,
        time_scale: float = 1.0,
        after_tokens: int | None = None,
        scenario_models: tuple[str, ...] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        app: SimulatorApp | None = None,
        startup_timeout_s: float = 10.0,
        shutdown_timeout_s: float = 10.0,
    ) -> None:
        if app is None:
            app = create_app(
                flavor=flavor,
                api_key=api_key,
                scenario=scenario,
                delay_ms=delay_ms,
                ping_interval_ms=ping_interval_ms,
                time_scale=time_scale,
                after_tokens=after_tokens,
                scenario_models=scenario_models,
            )
        self.app = app
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self._runner: ServerThread | None = None

    @property
    def api_key(self) -> str:
        """The key the simulator accepts."""
        return self.app.settings.api_key

    @property
    def flavor(self) -> str:
        """The flavor served."""
        return self.app.settings.flavor.name

    @property
    def scenario(self) -> str:
        """The server-wide default scenario."""
        return self.app.settings.scenario.name

    @property
    def _loop(self) -> asyncio.AbstractEventLoop | None:
        return None if self._runner is None else self._runner.loop

    def reset(self) -> None:
        """Forget the per-scenario counts and windows (as ``POST /_chatcontract/reset``)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self.app.runtime.states.clear()
            return
        asyncio.run_coroutine_threadsafe(self._clear(), loop).result(timeout=5)

    async def _clear(self) -> None:
        self.app.runtime.states.clear()

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` without a path."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ``http://HOST:PORT/v1``."""
        return f"{self.root_url}/v1"

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._runner is not None and self._runner.alive

    def start(self) -> Self:
        """Bind, start uvicorn, and wait until it accepts requests.

        Raises:
            SimulatorError: the port is in use, or the server did not start in time.
        """
        if self._runner is not None:
            raise SimulatorError("this SimulatorServer was already started; make a new one")
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=guarded_protocol(),
            log_level="warning",
            access_log=False,
            lifespan="off",
            log_config=None,
            timeout_graceful_shutdown=max(1, int(self.shutdown_timeout_s)),
        )
        runner = ServerThread(config, sock, f"chatcontract-simulator-{self.port}")
        self._runner = runner
        runner.start_or_raise(
            self.startup_timeout_s,
            SimulatorError,
            f"the simulator did not start on {self.root_url}",
        )
        return self

    def stop(self) -> None:
        """Release held requests, stop uvicorn, and wait (bounded) for the thread to end.

        Raises:
            SimulatorError: the server thread did not end within ``shutdown_timeout_s``.
        """
        runner = self._runner
        if runner is None:
            return
        loop = runner.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between check and call
                loop.call_soon_threadsafe(self.app.release_pending)
        if not runner.stop(self.shutdown_timeout_s):
            raise SimulatorError(
                f"the simulator on {self.root_url} did not stop within {self.shutdown_timeout_s} s"
            )

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"SimulatorServer({self.base_url!r}, flavor={self.flavor!r}, {state})"


def serve(
    *,
    flavor: str = "cometapi",
    api_key: str = DEFAULT_API_KEY,
    scenario: str = "ok",
    delay_ms: int | None = None,
    time_scale: float = 1.0,
    after_tokens: int | None = None,
    host: str = "127.0.0.1",
    port: int = 8787,
    on_ready: Callable[[SimulatorServer], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the simulator until Ctrl-C, SIGTERM, or ``stop`` is set; then shut down cleanly.

    ``on_ready`` is called once the server accepts requests (the CLI prints its banner there).

    Raises:
        SimulatorError: bad settings, the port is in use, or the server died.
    """
    stop = stop or threading.Event()
    server = SimulatorServer(
        flavor=flavor,
        api_key=api_key,
        scenario=scenario,
        delay_ms=delay_ms,
        time_scale=time_scale,
        after_tokens=after_tokens,
        host=host,
        port=port,
    )
    with _stop_on_sigterm(stop), server:
        if on_ready is not None:
            on_ready(server)
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(0.2):
                if not server.running:
                    raise SimulatorError(f"the simulator on {server.root_url} stopped unexpectedly")


@contextlib.contextmanager
def _stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """Turn SIGTERM into ``stop.set()`` while serving (main thread only, restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
