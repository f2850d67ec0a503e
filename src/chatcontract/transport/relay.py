"""A local fault relay: the real endpoint behind ``127.0.0.1``, with faults staged on demand.

Deadlines and stream interruptions cannot be proven against a healthy endpoint by asking it to
misbehave: a fast server answers before any small deadline, and no provider cuts a stream on
request. The relay sits between the client and the real endpoint instead. It speaks plain
HTTP/1.1 to the client on a loopback port (so it sees every SSE event) and forwards each
request with httpx2 to the endpoint (``http`` or ``https``, reached as the suite's own
requests reach it: an explicit transport, so no proxy from the environment), headers untouched
apart from the hop-by-hop ones. A request header
chooses what happens to that one answer:

- ``hold``: forward the request, then send nothing (not even the status line) until the client
  gives up, or until ``release`` passes, when the endpoint's answer is forwarded after all.
- ``stall``: forward the status, the headers and the first SSE event that carries data, then
  send nothing until the client gives up or ``release`` passes (then the rest follows).
- ``cut``: forward the first SSE event, then close the connection mid-stream (no final chunk).
- no header: pass the answer through.

A stream that never produces an event (an error status, a JSON answer) is passed through and
the record says the fault was not staged. The control headers (``X-Chatcontract-Relay-*``)
never reach the endpoint. The relay binds ``127.0.0.1`` only, logs nothing, keeps no header
or body, and every wait is bounded. ``record(id)`` says what it did with a request.

Example::

    with FaultRelay("https://api.cometapi.com") as relay:
        headers = {**auth, **relay.control(fault="hold", release_ms=2_000, request_id="t1")}
        try:
            httpx2.post(relay.url_for(url), json=body, headers=headers, timeout=0.2)
        except httpx2.ReadTimeout:
            pass
        relay.record("t1").staged  # True: the answer was held
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from typing import Self
from urllib.parse import urlsplit

import httpx2

from chatcontract._listen import Served
from chatcontract.errors import RelayError

from ._relay_session import (
    FAULT_HEADER,
    FAULTS,
    ID_HEADER,
    MAX_RELEASE_MS,
    RELAY_HEADER_PREFIX,
    RELEASE_HEADER,
    Fault,
    RelayRecord,
    Track,
    first_event_end,
    serve_connection,
)

__all__ = [
    "FAULT_HEADER",
    "ID_HEADER",
    "RELAY_HEADER_PREFIX",
    "RELEASE_HEADER",
    "Fault",
    "FaultRelay",
    "RelayRecord",
    "first_event_end",
]

_HOST = "127.0.0.1"  # never anything else: the relay forwards a real key
_MAX_CONNECTIONS = 64
_READ_LIMIT = 64 * 1024
_RECORDS_KEPT = 256


def _bind_loopback() -> socket.socket:
    # IPPROTO_TCP (not 0) so asyncio sets TCP_NODELAY on accepted sockets: no Nagle delay
    # between an SSE event and the stall or cut that follows it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.bind((_HOST, 0))
        sock.listen(_MAX_CONNECTIONS)
    except OSError as exc:
        sock.close()
        raise RelayError(f"the fault relay cannot listen on {_HOST} ({exc.strerror})") from exc
    sock.setblocking(False)
    return sock


def _origin(upstream: str) -> str:
    parts = urlsplit(upstream)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RelayError(
            f"the fault relay needs an http:// or https:// endpoint, got {parts.scheme!r}"
        )
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class FaultRelay(Served):
    """The fault relay on a background thread with its own event loop.

    Args:
        upstream: the real endpoint's base URL (only its scheme, host and port are used; the
            client's path is kept). Credentials in it are dropped.
        upstream_timeout_s: how long the relay waits for the endpoint at each step.
        verify: TLS verification towards the endpoint, as httpx2 takes it (default: on, with
            the same trust store as every httpx2 client).
        startup_timeout_s, shutdown_timeout_s: bounds on ``start()`` and ``stop()``.

    Use it as a context manager: ``stop()`` releases every connection and closes the client.
    """

    def __init__(
        self,
        upstream: str,
        *,
        upstream_timeout_s: float = 60.0,
        verify: ssl.SSLContext | bool = True,
        startup_timeout_s: float = 5.0,
        shutdown_timeout_s: float = 5.0,
    ) -> None:
        if not 0 < upstream_timeout_s <= 600:
            raise ValueError("upstream_timeout_s must be above 0 and at most 600")
        self._upstream = _origin(upstream)
        self._upstream_timeout_s = upstream_timeout_s
        self._verify = verify
        self._startup_timeout_s = startup_timeout_s
        self._shutdown_timeout_s = shutdown_timeout_s
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._tracks: dict[str, Track] = {}
        self._tracks_changed = threading.Condition()
        self._stopped = False

    def __repr__(self) -> str:
        return f"FaultRelay(upstream={self._upstream!r}, port={self._port})"

    # -- addresses and control ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (after ``start()``)."""
        if self._port is None:
            raise RelayError("the fault relay is not started")
        return f"http://{_HOST}:{self._port}"

    def url_for(self, url: str) -> str:
        """``url`` (on the endpoint) with its origin replaced by the relay's."""
        parts = urlsplit(url)
        path = parts.path or "/"
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.base_url}{path}{query}"

    @staticmethod
    def control(
        *, fault: Fault, request_id: str, release_ms: float | None = None
    ) -> dict[str, str]:
        """The headers that ask the relay for ``fault`` on one request (stripped upstream)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; use one of {', '.join(FAULTS)}")
        headers = {FAULT_HEADER: fault, ID_HEADER: request_id}
        if release_ms is not None:
            if not 0 <= release_ms <= MAX_RELEASE_MS:
                raise ValueError(f"release_ms must be between 0 and {MAX_RELEASE_MS}")
            headers[RELEASE_HEADER] = f"{release_ms:.0f}"
        return headers

    def record(self, request_id: str, *, wait_s: float = 2.0) -> RelayRecord | None:
        """What the relay did with ``request_id``, once it is done (waits at most ``wait_s``
        in all, for the request to arrive and for the relay to finish with it).

        None when no request carried that id. A request still in progress after ``wait_s``
        is reported as it stands.
        """
        deadline = time.monotonic() + wait_s
        with self._tracks_changed:
            self._tracks_changed.wait_for(
                lambda: request_id in self._tracks or self._stopped,
                timeout=max(0.0, deadline - time.monotonic()),
            )
            track = self._tracks.get(request_id)
        if track is None:
            return None
        track.done.wait(max(0.0, deadline - time.monotonic()))
        return track.freeze()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind ``127.0.0.1`` (a free port) and serve on a background thread.

        Raises:
            RelayError: the socket cannot be bound or the loop did not start in time.
        """
        if self._thread is not None:
            raise RelayError("this FaultRelay was already started; make a new one")
        sock = _bind_loopback()
        self._port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name=f"chatcontract-relay-{self._port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(self._startup_timeout_s) or self._failure is not None:
            self.stop()
            reason = f": {type(self._failure).__name__}" if self._failure else ""
            raise RelayError(f"the fault relay did not start on {self.base_url}{reason}")
        return self

    def stop(self) -> None:
        """Drop every connection, close the upstream client, and end the thread (bounded)."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own meanwhile
                loop.call_soon_threadsafe(stopping.set)
        thread.join(self._shutdown_timeout_s)
        if thread.is_alive():
            raise RelayError(
                f"the fault relay on {self.base_url} did not stop within "
                f"{self._shutdown_timeout_s:g} s"
            )
        with self._tracks_changed:
            self._stopped = True
            for track in self._tracks.values():
                track.done.set()  # nobody waits on a request the stop cut short
            self._tracks_changed.notify_all()

    def _run(self, sock: socket.socket) -> None:
        try:
            with asyncio.Runner() as runner:
                runner.run(self._serve(sock))
        except BaseException as exc:  # reported by start(); never lost in the thread
            self._failure = exc
            self._ready.set()
        finally:
            sock.close()

    async def _serve(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        handlers: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(_MAX_CONNECTIONS)
        timeout = httpx2.Timeout(self._upstream_timeout_s)
        async with httpx2.AsyncClient(
            transport=httpx2.AsyncHTTPTransport(verify=self._verify),
            timeout=timeout,
            follow_redirects=False,
        ) as client:

            async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                task = asyncio.current_task()
                if task is not None:
                    handlers.add(task)
                try:
                    # The relay never logs and never lets one connection disturb the loop.
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        if slots.locked():  # bounded: a flood of connections is refused
                            return
                        async with slots:
                            await serve_connection(
                                reader,
                                writer,
                                client=client,
                                upstream=self._upstream,
                                remember=self._remember,
                            )
                finally:
                    # Everything sent was drained: close politely; a client that stopped
                    # reading (bytes still buffered) is cut off instead of waited for.
                    if writer.transport.get_write_buffer_size():
                        writer.transport.abort()
                    else:
                        writer.close()
                    # The socket is closed in a loop callback: let it run before the loop ends.
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
                    if task is not None:
                        handlers.discard(task)

            server = await asyncio.start_server(accept, sock=sock, limit=_READ_LIMIT)
            self._ready.set()
            try:
                await self._stopping.wait()
            finally:
                server.close()
                for task in list(handlers):
                    task.cancel()
                await asyncio.gather(*handlers, return_exceptions=True)
                await server.wait_closed()

    def _remember(self, request_id: str, track: Track) -> None:
        with self._tracks_changed:
            self._tracks[request_id] = track
            while len(self._tracks) > _RECORDS_KEPT:  # bounded memory over a long run
                del self._tracks[next(iter(self._tracks))]
            self._tracks_changed.notify_all()
