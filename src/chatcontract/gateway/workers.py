"""``chatcontract gateway --workers N``: N worker processes serving one listening socket.

Pre-fork: the parent binds the client socket (and the admin one) once, then starts N workers
(``multiprocessing`` spawn: a fresh interpreter each, no threads or event loop inherited) that
each run the chat app on the inherited socket; the kernel hands each connection to one of them.
The parent supervises: a worker that ends unexpectedly is started again (with a growing pause
if it keeps dying at once), SIGTERM/SIGINT stop every worker gracefully (SIGTERM, then SIGKILL
after the grace period) and the parent exits 0 with no worker left behind. A worker whose
parent disappears (its pipe closes) stops itself.

The parent serves the admin port itself: it never serves chat, so a scrape, ``/readyz`` or a
kill switch keeps answering while workers are busy, crash or restart. On each scrape it asks
every worker over its pipe for its metrics and readiness and adds them up
(``chatcontract.gateway.metrics.merge``).

What is shared by every worker: the budget guard's spend (``SharedStore``: a small file in a
temporary directory per gateway run, memory-mapped, locked with ``flock``; the caps hold for
the gateway as a whole) and the admin kill switch. What stays per worker: breakers, the
in-flight count, connection pools.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import mmap
import multiprocessing
import os
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import anyio

from chatcontract.contract import Contract
from chatcontract.errors import ConfigError
from chatcontract.policy import kill_switch_active

from .admin import ADMIN_PATHS, AdminSource, Readiness

__all__ = [
    "MAX_WORKERS",
    "SharedStore",
    "Supervisor",
    "WorkerConfig",
    "WorkersAdmin",
    "serve_workers",
]

#: ``--workers`` bounds.
MAX_WORKERS = 64

_BUCKET_S = 60.0  # spend is kept per minute: a record leaves the 24 h window within a minute
_BUCKETS = 1441  # a day of minutes, plus the one being filled
_NANO = 1_000_000_000  # amounts are whole nano-USD (rounded up): sums stay exact
_SWITCH = 0  # byte 0: the kill switch (bytes 1 to 7 unused)
_TOTALS = struct.Struct("<qq")  # at byte 8: the running total, the swept minute
_FIRST_SLOT = 8 + _TOTALS.size
_SLOT = struct.Struct("<qq")  # minute index, nano-USD
_SIZE = _FIRST_SLOT + _BUCKETS * _SLOT.size

_STARTUP_S = 60.0
_STOP_GRACE_S = 15.0
_ASK_TIMEOUT_S = 3.0


class SharedStore:
    """What every worker of one gateway shares: a memory-mapped file, locked with ``flock``.

    ``SharedStore.create(directory)`` in the parent; ``SharedStore(path)`` in each worker.
    It is a ``SpendStore`` (``add``, ``total_since``) for the budget guard, kept per minute
    over the last day (a record counts until its minute is over 24 hours old: never less
    than the exact window), and holds the admin kill switch (``value``, a ``Flag``).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, _SIZE)
        self._lock = threading.Lock()  # flock does not exclude threads of one process

    @classmethod
    def create(cls, directory: Path | str) -> SharedStore:
        """A new, zeroed store in ``directory``."""
        path = Path(directory) / "shared.bin"
        with open(path, "wb") as file:
            file.write(b"\0" * _SIZE)
        return cls(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    # -- Flag ------------------------------------------------------------------------------

    @property
    def value(self) -> bool:
        """The admin kill switch, as every worker sees it."""
        return self._map[_SWITCH] == 1

    @value.setter
    def value(self, on: bool) -> None:
        self._map[_SWITCH] = 1 if on else 0

    # -- SpendStore ------------------------------------------------------------------------

    # The running total holds every slot whose minute is at least the swept minute; moving
    # the horizon subtracts the minutes it passes (one per minute in steady state), so a
    # budget check reads one number instead of a day of slots.

    def _slot(self, minute: int) -> int:
        return _FIRST_SLOT + (minute % _BUCKETS) * _SLOT.size

    def _sweep(self, cutoff: int) -> tuple[int, int]:
        """Drop the minutes before ``cutoff`` from the total; (total, swept) after."""
        total, swept = _TOTALS.unpack_from(self._map, 8)
        if cutoff <= swept:
            return total, swept
        if cutoff - swept >= _BUCKETS:  # a whole day passed: recount what is left
            total = 0
            for index in range(_BUCKETS):
                minute, nano = _SLOT.unpack_from(self._map, _FIRST_SLOT + index * _SLOT.size)
                if minute >= cutoff:
                    total += nano
        else:
            for minute in range(swept, cutoff):
                held, nano = _SLOT.unpack_from(self._map, self._slot(minute))
                if held == minute:
                    total -= nano
        _TOTALS.pack_into(self._map, 8, total, cutoff)
        return total, cutoff

    def add(self, at: float, cost: float) -> None:
        minute = math.floor(at / _BUCKET_S)
        amount = math.ceil(cost * _NANO)
        offset = self._slot(minute)
        with self._locked():
            total, swept = _TOTALS.unpack_from(self._map, 8)
            held, nano = _SLOT.unpack_from(self._map, offset)
            if held != minute:  # the slot held a minute a day older (or never used)
                if held >= swept and nano:
                    total -= nano
                nano = 0
            _SLOT.pack_into(self._map, offset, minute, nano + amount)
            if minute >= swept:
                total += amount
            _TOTALS.pack_into(self._map, 8, total, swept)

    def total_since(self, horizon: float) -> float:
        # A minute counts while it ends after the horizon: minute >= floor(horizon / 60).
        with self._locked():
            total, _ = self._sweep(math.floor(horizon / _BUCKET_S))
        return total / _NANO

    def close(self) -> None:
        """Unmap and close the file (it stays on disk until its directory is removed)."""
        self._map.close()
        os.close(self._fd)


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs to serve (pickled to it at start)."""

    contract: Contract
    keys: tuple[str, ...]
    max_body_bytes: int
    shared_path: str
    metrics: bool
    max_connections: int | None = None


# -- the worker process ----------------------------------------------------------------------


def _worker_main(index: int, config: WorkerConfig, sock: socket.socket, conn: Connection) -> None:
    """One worker: the chat app on ``sock``, answering the parent's questions on ``conn``."""
    from prometheus_client import CollectorRegistry, generate_latest

    from chatcontract.telemetry import PrometheusSink

    from .admin import readiness_of, worker_facts
    from .app import create_app
    from .metrics import GatewayMetrics
    from .server import serve
    from .state import GatewayState

    store = SharedStore(config.shared_path)
    registry = CollectorRegistry()
    sinks = [PrometheusSink(registry, contract=config.contract)] if config.metrics else []
    state = GatewayState(
        config.contract,
        keys=config.keys,
        max_body_bytes=config.max_body_bytes,
        max_connections=config.max_connections,
        telemetry_sinks=sinks,
        spend_store=store,
        kill_switch_flag=store,
    )
    if config.metrics:
        GatewayMetrics(registry, state)
    sending = threading.Lock()

    def tell(message: tuple[Any, ...]) -> None:
        with sending, contextlib.suppress(OSError):
            conn.send(message)

    def answer() -> None:
        while True:
            try:
                seq = conn.recv()
            except (EOFError, OSError):  # the parent is gone: stop serving
                # Killed, it could not remove the store's directory (its own, from mkdtemp):
                # the workers do, whichever first (no restart is coming).
                shutil.rmtree(Path(config.shared_path).parent, ignore_errors=True)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            ready = readiness_of(state)
            metrics = generate_latest(registry) if config.metrics else b""
            facts = {**worker_facts(state), "index": index, "routes": ready.routes}
            tell(("answer", seq, metrics, facts))

    threading.Thread(target=answer, name="chatcontract-worker-pipe", daemon=True).start()
    serve(create_app(state), sock, on_ready=lambda: tell(("started", os.getpid())))
    store.close()


# -- the parent --------------------------------------------------------------------------------


class _Worker:
    def __init__(self, index: int, process: BaseProcess, conn: Connection) -> None:
        self.index = index
        self.process = process
        self.conn = conn
        self.started_at = time.monotonic()
        self.pid = process.pid or 0
        self.lock = threading.Lock()
        self.seq = 0


class Supervisor:
    """Starts, watches and stops the workers (see the module docstring).

    Args:
        config: what each worker serves.
        sock: the bound client socket, shared by the workers.
        count: how many workers.
        store: the shared store (its file lives in ``directory``).
        directory: the per-run temporary directory, removed by ``close``.
        say: where progress lines go (the CLI's stdout).
    """

    def __init__(
        self,
        config: WorkerConfig,
        sock: socket.socket,
        count: int,
        *,
        store: SharedStore,
        directory: str,
        say: Callable[[str], None],
    ) -> None:
        self.config = config
        self.sock = sock
        self.count = count
        self.store = store
        self.directory = directory
        self.say = say
        self.on_restart: Callable[[], None] = lambda: None
        self.workers: dict[int, _Worker] = {}
        self._context = multiprocessing.get_context("spawn")
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        self._pauses: dict[int, float] = {}

    # -- processes -------------------------------------------------------------------------

    def _spawn(self, index: int) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main,
            args=(index, self.config, self.sock, theirs),
            name=f"chatcontract-gateway-worker-{index}",
            daemon=False,
        )
        process.start()
        theirs.close()
        worker = _Worker(index, process, ours)
        self.workers[index] = worker
        return worker

    def start(self) -> None:
        """Start every worker; return once each accepts requests (bounded)."""
        for index in range(self.count):
            self._spawn(index)
        deadline = time.monotonic() + _STARTUP_S
        for worker in self.workers.values():
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConfigError(
                        f"gateway worker {worker.index} did not start within {_STARTUP_S:g} s"
                    )
                ready = wait([worker.conn, worker.process.sentinel], timeout=remaining)
                if worker.conn in ready:
                    try:
                        message = worker.conn.recv()
                    except (EOFError, OSError):
                        message = None
                    if message is not None and message[0] == "started":
                        break
                if not worker.process.is_alive():
                    raise ConfigError(
                        f"gateway worker {worker.index} exited while starting (code "
                        f"{worker.process.exitcode}); its error is above, or run with "
                        "--workers 1 to see it"
                    )

    def request_stop(self) -> None:
        """Ask ``supervise`` to stop (a signal handler may call it)."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def supervise(self) -> None:
        """Restart workers that end, until ``request_stop``."""
        while not self._stopping.is_set():
            # A dead worker's sentinel stays readable: wait on the live ones only, and wake
            # up soon while one waits out its pause.
            live: list[Any] = [
                w.process.sentinel for w in self.workers.values() if w.process.is_alive()
            ]
            pausing = len(live) < len(self.workers)
            wait([*live, self._wake_r], timeout=0.25 if pausing else 1.0)
            with contextlib.suppress(BlockingIOError, OSError):
                os.read(self._wake_r, 64)
            if self._stopping.is_set():
                return
            now = time.monotonic()
            for index, worker in list(self.workers.items()):
                if worker.process.is_alive():
                    continue
                pause = self._pauses.get(index, 0.0)
                if now < worker.started_at + pause:
                    continue  # it died at once: wait before trying again
                lived = now - worker.started_at
                self._pauses[index] = 0.0 if lived > 10 else min(max(pause * 2, 0.5), 10.0)
                self.say(
                    f"gateway worker {index} (pid {worker.pid}) exited with code "
                    f"{worker.process.exitcode}; starting it again"
                )
                worker.conn.close()
                self._spawn(index)
                self.on_restart()

    def alive(self) -> int:
        """Workers running now."""
        return sum(worker.process.is_alive() for worker in self.workers.values())

    def stop(self) -> None:
        """Stop every worker: SIGTERM (graceful), SIGKILL after the grace period."""
        self._stopping.set()
        for worker in self.workers.values():
            if worker.process.is_alive() and worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        for worker in self.workers.values():
            worker.process.join(max(deadline - time.monotonic(), 0.0))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5.0)
            worker.conn.close()

    def close(self) -> None:
        """Remove the shared store and the temporary directory (after ``stop``)."""
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- asking the workers ------------------------------------------------------------------

    def ask(self, worker: _Worker) -> tuple[bytes, dict[str, Any]] | None:
        """A worker's metrics and facts; None if it does not answer in time."""
        with worker.lock:
            if not worker.process.is_alive():
                return None
            worker.seq += 1
            seq = worker.seq
            try:
                worker.conn.send(seq)
                deadline = time.monotonic() + _ASK_TIMEOUT_S
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not worker.conn.poll(remaining):
                        return None
                    message = worker.conn.recv()
                    if message[0] == "answer" and message[1] == seq:
                        return message[2], message[3]
                    # a "started" line, or the answer to a question that timed out
            except (EOFError, OSError):
                return None

    def ask_all(self) -> list[tuple[bytes, dict[str, Any]]]:
        """Every worker's answer, asked in parallel (those that did not answer left out)."""
        workers = list(self.workers.values())
        answers: list[tuple[bytes, dict[str, Any]] | None] = [None] * len(workers)

        def one(position: int) -> None:
            answers[position] = self.ask(workers[position])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(workers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [answer for answer in answers if answer is not None]


class WorkersAdmin(AdminSource):
    """The admin source of a ``--workers`` gateway: asks every worker, adds them up."""

    def __init__(self, supervisor: Supervisor, registry: Any, environ_kill: Callable[[], bool]):
        self.supervisor = supervisor
        self.registry = registry
        self._environ_kill = environ_kill

    def metrics(self) -> bytes:
        from prometheus_client import generate_latest

        from .metrics import exposition, merge

        answers = self.supervisor.ask_all()
        merged = exposition(merge(metrics.decode() for metrics, _ in answers))
        return generate_latest(self.registry) + merged

    def readiness(self) -> Readiness:
        answers = self.supervisor.ask_all()
        workers = [facts for _, facts in answers]
        routes = [{"worker": f["index"], **route} for f in workers for route in f["routes"]]
        if any(facts["ready"] for facts in workers):
            return Readiness(True, routes)
        if not workers:
            return Readiness(False, routes, "no worker is answering")
        return Readiness(False, routes, "every route's circuit breaker is open in every worker")

    def workers(self) -> list[dict[str, Any]]:
        found = {facts["index"]: facts for _, facts in self.supervisor.ask_all()}
        listed = []
        for index, worker in sorted(self.supervisor.workers.items()):
            facts = found.get(index)
            if facts is None:
                listed.append({"index": index, "pid": worker.pid, "answering": False})
            else:
                listed.append({**facts, "answering": True})
        return listed

    def kill_switch(self) -> dict[str, bool]:
        on, env = self.supervisor.store.value, self._environ_kill()
        return {"on": on, "env": env, "effective": on or env}

    def set_kill_switch(self, on: bool) -> None:
        self.supervisor.store.value = on


def serve_workers(
    contract: Contract,
    *,
    keys: tuple[str, ...],
    max_body_bytes: int,
    max_connections: int | None = None,
    listen: tuple[str, int],
    admin: tuple[str, int] | None,
    count: int,
    auth: str,
    say: Callable[[str], None],
) -> int:
    """``chatcontract gateway --workers N``: serve until SIGTERM or Ctrl-C, then stop every
    worker and exit 0 (see the module docstring)."""
    from prometheus_client import CollectorRegistry

    from .admin import AdminApp, AdminServer, bind_admin
    from .metrics import SupervisorMetrics
    from .server import bind
    from .state import GatewayState

    # Checked here, once, before any worker starts: the provider keys are in the environment.
    state = GatewayState(contract, keys=keys, max_body_bytes=max_body_bytes)
    sock = bind(*listen)
    try:
        admin_sock = bind_admin(*admin) if admin is not None else None
    except BaseException:
        sock.close()
        raise
    directory = tempfile.mkdtemp(prefix="chatcontract-gateway-")
    store = SharedStore.create(directory)
    config = WorkerConfig(
        contract, keys, max_body_bytes, str(store.path), admin is not None, max_connections
    )
    supervisor = Supervisor(config, sock, count, store=store, directory=directory, say=say)
    admin_server: AdminServer | None = None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def stop(signum: int, frame: Any) -> None:
        supervisor.request_stop()

    for sig in previous:
        signal.signal(sig, stop)
    try:
        supervisor.start()
        if admin_sock is not None:
            registry = CollectorRegistry()
            metrics = SupervisorMetrics(registry, contract.provider)
            metrics.alive.set_function(supervisor.alive)
            supervisor.on_restart = metrics.restarted.inc
            environ = state.upstream._core.environ
            source = WorkersAdmin(
                supervisor,
                registry,
                lambda: kill_switch_active(contract.policy, environ),
            )
            admin_server = AdminServer(AdminApp(source), admin_sock).start()
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        say(f"chatcontract gateway listening on http://{shown}:{port}/v1")
        for route in state.routes:
            say(f"  route {route.name}: {route.model} at {route.base_url} "
                f"(key: ${route.secret_source})")  # fmt: skip
        say(f"  auth:  {auth}")
        if admin_server is not None:
            say(f"  admin: {admin_server.root_url} ({' '.join(ADMIN_PATHS)})")
        pids = ", ".join(str(worker.pid) for worker in supervisor.workers.values())
        say(f"  workers: {count} (pids {pids}); parent pid {os.getpid()}")
        say("Press Ctrl-C to stop.")
        supervisor.supervise()
    finally:
        supervisor.stop()
        if admin_server is not None:
            admin_server.stop()
        elif admin_sock is not None:
            admin_sock.close()
        sock.close()
        supervisor.close()
        with contextlib.suppress(Exception):  # the parent's own clients never connected
            anyio.run(state.aclose)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say("chatcontract gateway stopped")
    return 0
