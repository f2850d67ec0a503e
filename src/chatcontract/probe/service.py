"""Running the probe process: the HTTP app on uvicorn in a thread, the cycle loop in the caller.

``AppServer`` serves any ASGI app on a socket it binds itself (port 0 picks a free one) and
stops within a bounded time. ``run_loop`` waits for each due cycle, runs it, and returns once
``stop`` is set (SIGTERM and Ctrl-C set it through ``stop_on_signals``); every wait is bounded,
so a stop request is honoured within ``MAX_WAIT_S`` even between long intervals. A cycle runs on
a worker thread: once ``stop`` is set it sends no further request, and a probe still waiting for
the endpoint gets ``STOP_GRACE_S`` to finish before the loop returns without it (a request the
endpoint holds for ``total_ms`` must not outlast a service manager's stop timeout).
"""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Self

import uvicorn

from chatcontract._http_guard import guarded_protocol
from chatcontract._listen import Served, listen_socket
from chatcontract._log import get_logger
from chatcontract._server_thread import ServerThread
from chatcontract.errors import ConfigError

from .prober import Prober
from .runner import CycleResult
from .schedule import Clock, Scheduler

__all__ = ["MAX_WAIT_S", "STOP_GRACE_S", "AppServer", "run_loop", "stop_on_signals"]

logger = get_logger("chatcontract.probe")

#: The longest single wait of the loop: how quickly a stop request is noticed.
MAX_WAIT_S = 1.0
#: How long a probe in flight may still take once a stop is requested.
STOP_GRACE_S = 5.0
#: The most connections the probe's HTTP server keeps open at once.
MAX_HTTP_CONNECTIONS = 128
_POLL_S = 0.01


def _bind(host: str, port: int) -> socket.socket:
    try:
        return listen_socket(host, port, backlog=128)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"--listen {host}:{port}: the port is in use; pick another port "
                "(or 0 for a free one)"
            ) from exc
        raise ConfigError(
            f"--listen {host}:{port}: cannot listen ({exc.strerror}); pick another address"
        ) from exc


class AppServer(Served):
    """An ASGI app served by uvicorn on a background thread.

    Example::

        with AppServer(app, host="127.0.0.1", port=0) as server:
            httpx2.get(server.url + "/healthz")
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
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
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        """Bind and serve; returns once uvicorn accepts connections (``ConfigError`` if not)."""
        if self._runner is not None:
            raise RuntimeError("this AppServer was already started")
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=guarded_protocol(max_connections=MAX_HTTP_CONNECTIONS),
            log_level="warning",
            access_log=False,
            lifespan="off",
            log_config=None,
            timeout_graceful_shutdown=max(1, int(self.shutdown_timeout_s)),
        )
        runner = ServerThread(config, sock, f"chatcontract-probe-http-{self.port}")
        self._runner = runner
        runner.start_or_raise(
            self.startup_timeout_s,
            ConfigError,
            f"the probe HTTP server did not start on {self.url}",
        )
        return self

    def stop(self) -> None:
        """Ask uvicorn to stop and wait (bounded) for the thread."""
        if self._runner is not None:
            self._runner.stop(self.shutdown_timeout_s)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM and SIGINT while inside (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_loop(
    *,
    prober: Prober,
    scheduler: Scheduler,
    clock: Clock,
    stop: threading.Event,
    on_cycle: Callable[[CycleResult], None] | None = None,
    max_cycles: int | None = None,
    on_store_error: Callable[[sqlite3.Error], None] | None = None,
    on_abandoned: Callable[[], None] | None = None,
    stop_grace_s: float = STOP_GRACE_S,
) -> int:
    """Run cycles when due until ``stop`` is set (or ``max_cycles`` ran); returns the count.

    A cycle the probe store breaks (``sqlite3.Error`` out of a read) is reported to
    ``on_store_error`` and the loop goes on: the HTTP app keeps serving, ``/healthz`` says why.
    A cycle still running ``stop_grace_s`` after ``stop`` was set is left behind (its probe in
    flight is not recorded: no verdict was reached) and reported to ``on_abandoned``.
    """
    cycles = 0
    while not stop.is_set():
        now = clock()
        if scheduler.is_due(now):
            cycles += 1
            cycle = _Cycle(prober, now, stop)
            if not cycle.finish(stop, stop_grace_s):
                logger.warning("stopped with a probe in flight; its result is not recorded")
                if on_abandoned is not None:
                    on_abandoned()
                break
            if cycle.error is not None:
                logger.warning("probe cycle stopped by the probe store: %s", cycle.error)
                if on_store_error is not None:
                    on_store_error(cycle.error)
            elif cycle.result is not None and on_cycle is not None:
                on_cycle(cycle.result)
            scheduler.advance(clock())
            if max_cycles is not None and cycles >= max_cycles:
                break
        stop.wait(min(scheduler.seconds_until_due(clock()), MAX_WAIT_S))
    return cycles


class _Cycle:
    """One cycle on a daemon thread, so a stop request is not held up by a probe in flight."""

    def __init__(self, prober: Prober, now: float, stop: threading.Event) -> None:
        self.result: CycleResult | None = None
        self.error: sqlite3.Error | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(prober, now, stop), name="chatcontract-probe-cycle", daemon=True
        )
        self._thread.start()

    def _run(self, prober: Prober, now: float, stop: threading.Event) -> None:
        try:
            self.result = prober.run_cycle(now, cancel=stop)
        except sqlite3.Error as exc:
            self.error = exc
        except BaseException as exc:  # re-raised on the loop's thread by finish()
            self._failure = exc

    def finish(self, stop: threading.Event, grace_s: float) -> bool:
        """Wait for the cycle (``grace_s`` at most once ``stop`` is set); False: left running.

        An exception of the cycle other than a store error is raised here, as it would be
        had the cycle run on this thread.
        """
        while self._thread.is_alive() and not stop.is_set():
            self._thread.join(MAX_WAIT_S)
        self._thread.join(grace_s)
        if self._thread.is_alive():
            return False
        if self._failure is not None:
            raise self._failure
        return True
