"""Deferred observation: record a call cheaply while it runs, observe it while a thread waits.

Observing a call (parsing the request and the response, classifying, fingerprinting, building
the ``Exchange``, feeding the sinks) costs tens of microseconds of Python. Inline, that lands on
the caller's critical path. A ``DeferredCall`` instead only notes what passes (status, raw
headers, each body chunk with its arrival time) and, when the call ends, queues itself. The
queue is worked off, with every timestamp as recorded, so the Exchange is the one an inline
observer would have built:

* in the next *wait window*: a connection made by the timed network backend drains the queue
  between sending a request and reading its answer, when the thread would sit idle waiting
  for the server (provider latency is hundreds of milliseconds; the work is microseconds);
* by a janitor thread for calls older than ``MAX_DELAY_S`` (an idle process still reports);
* on ``flush()``, when a Prometheus registry holding a ``PrometheusSink`` is collected
  (a scrape sees every finished call), and at interpreter exit.

What is never deferred: a response that is not 2xx and an exception (failures are observed at
once: they are rare and wanted promptly), a response built with its content (a mock has no
network wait to hide work in), and a stream past ``MAX_BUFFERED_BYTES`` (from there on it is
observed chunk by chunk, so memory stays bounded). With more than ``MAX_PENDING`` calls
queued, the next one is observed inline: the queue cannot grow without bound.

Use deferral where only telemetry reads the Exchange (``instrument()``). Code that decides on
the outcome of a call before making the next one (``ChatClient``, ``validate``) observes inline.
"""

from __future__ import annotations

import atexit
import contextvars
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._pending import PENDING, drain
from ._timing import PhaseClock
from .exchange import Exchange
from .observer import CallObserver

__all__ = ["MAX_BUFFERED_BYTES", "MAX_DELAY_S", "MAX_PENDING", "DeferredCall", "flush"]

#: A stream buffered past this many bytes is observed inline from then on.
MAX_BUFFERED_BYTES = 256 * 1024
#: More queued calls than this and the next one is observed inline.
MAX_PENDING = 1024
#: The janitor completes calls that waited this long (seconds) for a wait window.
MAX_DELAY_S = 0.25

_perf_counter = time.perf_counter

#: Builds the inline observer of a call: ``factory(subject, clock, started_at)``, the subject
#: being what the call was started with (the transport's request), plus the recorded clock and
#: wall-clock start.
ObserverFactory = Callable[[Any, PhaseClock, float], CallObserver]


def flush() -> int:
    """Observe every deferred call that has ended, now; returns how many were completed.

    Call it before reading sinks in tests or before a short-lived process reports.
    """
    return drain()


class DeferredCall:
    """Records one call for later observation; the same events as ``CallObserver``."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_context",
        "_ended_at",
        "_factory",
        "_head_at",
        "_headers",
        "_observer",
        "_queued",
        "_stalled",
        "_started_at",
        "_status",
        "_subject",
        "_times",
        "clock",
    )

    def __init__(self, factory: ObserverFactory, subject: Any = None) -> None:
        self.clock = PhaseClock()
        self._started_at = time.time()
        self._factory = factory
        self._subject = subject
        # The caller's context variables (e.g. the OpenTelemetry span in progress): observation
        # runs in them, so sinks see the call's context wherever the queue is worked off.
        self._context = contextvars.copy_context()
        self._observer: CallObserver | None = None
        self._status: int | None = None
        self._headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]] = ()
        self._head_at = 0.0
        self._chunks: list[bytes] = []
        self._times: list[float] = []
        self._buffered = 0
        self._ended_at = 0.0
        self._stalled = False
        self._queued = False

    @property
    def exchange(self) -> Exchange | None:
        """The Exchange once observed (None while the call waits in the queue)."""
        return None if self._observer is None else self._observer.exchange

    def on_response(
        self, status: int, headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]]
    ) -> None:
        at = _perf_counter()
        if self._observer is not None:
            self._observer.on_response(status, headers, at)
            return
        self._status = status
        self._headers = headers
        self._head_at = at
        if not 200 <= status < 300:  # a failure: observed at once
            self.inline()

    def on_chunk(self, chunk: bytes) -> None:
        observer = self._observer
        if observer is not None:
            observer.on_chunk(chunk)
            return
        self._chunks.append(chunk)
        self._times.append(_perf_counter())
        self._buffered += len(chunk)
        if self._buffered > MAX_BUFFERED_BYTES:
            self.inline()

    def on_error(self, exc: BaseException) -> Exchange | None:
        if self._queued:  # the call had ended (an error closing it): the queue owns it now
            return None
        return self.inline().on_error(exc)

    def finish(self, *, stalled: bool = False) -> None:
        """The body ended: queue the call (or observe it now when the queue is full).

        Once queued, the call belongs to whichever thread works the queue off: later
        events from the caller (closing the response) are ignored, never raced."""
        if self._queued:
            return
        if self._observer is not None:
            self._observer.finish(stalled=stalled)
            return
        self._queued = True
        self._ended_at = _perf_counter()
        self._stalled = stalled
        if len(PENDING) >= MAX_PENDING:
            self.inline()
            return
        PENDING.append(self)
        if _JANITOR.thread is None:
            _JANITOR.start()

    def inline(self) -> CallObserver:
        """Observe from here on as it happens: replay what was recorded into an inline
        observer (the finish too, if the call already ended) and return it."""
        observer = self._observer
        if observer is not None:
            return observer
        observer = self._observer = self._factory(self._subject, self.clock, self._started_at)
        self._subject = None  # the request (and its prompt) is not kept past observation
        if self._status is not None:
            observer.on_response(self._status, self._headers, self._head_at)
        for chunk, at in zip(self._chunks, self._times, strict=True):
            observer.on_chunk(chunk, at)
        self._chunks = []
        self._times = []
        self._headers = ()
        if self._queued:
            observer.finish(stalled=self._stalled, at=self._ended_at)
        return observer

    def complete(self) -> None:
        """Build the Exchange and hand it to the sinks, in the context the call was made in
        (the queue calls this once)."""
        self._context.run(self.inline)

    @property
    def waited(self) -> float:
        """Seconds since the call ended (0 while it runs)."""
        return _perf_counter() - self._ended_at if self._queued else 0.0


# -- the janitor: an idle process still reports within MAX_DELAY_S ------------------------------


class _Janitor:
    """One daemon thread, started with the first deferred call, that completes calls which
    waited ``MAX_DELAY_S`` without a wait window. It sleeps otherwise."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self.thread is None:
                name = "chatcontract-janitor"
                thread = threading.Thread(target=self._run, name=name, daemon=True)
                thread.start()
                self.thread = thread

    @staticmethod
    def _run() -> None:
        while True:
            time.sleep(MAX_DELAY_S)
            try:
                oldest = PENDING[0]
            except IndexError:
                continue
            if getattr(oldest, "waited", MAX_DELAY_S) >= MAX_DELAY_S:
                drain()

    def after_fork_in_child(self) -> None:
        """The child neither has the parent's thread nor owns the parent's pending calls."""
        self.thread = None
        PENDING.clear()


_JANITOR = _Janitor()
os.register_at_fork(after_in_child=_JANITOR.after_fork_in_child)
atexit.register(drain)
