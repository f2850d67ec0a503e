"""Fixtures for the gateway tests: simulators and gateways on 127.0.0.1, free ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chatcontract.contract import Contract
from chatcontract.gateway import GatewayServer, GatewayState, create_app
from chatcontract.simulator import SimulatorServer

SimPool = Callable[..., SimulatorServer]
GatewayFactory = Callable[..., GatewayServer]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sims() -> Iterator[SimPool]:
    """``sims("cut_stream", after_tokens=5)``: a running simulator, one per distinct setting
    for the whole session (stateful scenarios: call ``fresh_sim`` instead)."""
    servers: dict[tuple[Any, ...], SimulatorServer] = {}

    def get(scenario: str = "ok", flavor: str = "cometapi", **settings: Any) -> SimulatorServer:
        key = (scenario, flavor, tuple(sorted(settings.items())))
        if key not in servers:
            servers[key] = SimulatorServer(flavor=flavor, scenario=scenario, **settings).start()
        return servers[key]

    yield get
    with ThreadPoolExecutor(max_workers=len(servers) or 1) as pool:
        list(pool.map(SimulatorServer.stop, servers.values()))


@pytest.fixture
def fresh_sim() -> Iterator[SimPool]:
    """A new simulator per call (its fault counts and windows start afresh), stopped after."""
    started: list[SimulatorServer] = []

    def make(scenario: str = "ok", **settings: Any) -> SimulatorServer:
        server = SimulatorServer(scenario=scenario, **settings).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def gateway() -> Iterator[GatewayFactory]:
    """``gateway(contract, environ, keys=...)``: a running gateway, stopped after the test."""
    started: list[GatewayServer] = []

    def make(contract: Contract, environ: Mapping[str, str], **options: Any) -> GatewayServer:
        state = GatewayState(contract, environ=environ, **options)
        server = GatewayServer(create_app(state)).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


class RecordingApp:
    """The simulator app, recording what each request to it carried (headers, body)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    def __getattr__(self, name: str) -> Any:  # settings, runtime, release_pending
        return getattr(self.inner, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        chunks: list[bytes] = []
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        entry = (scope["path"], headers, b"")
        self.requests.append(entry)
        index = len(self.requests) - 1

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                self.requests[index] = (entry[0], entry[1], b"".join(chunks))
            return message

        await self.inner(scope, recording_receive, send)

    def chat_requests(self) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for path, h, b in self.requests if path.endswith("/chat/completions")]


@pytest.fixture
def recorded() -> Iterator[Callable[..., tuple[SimulatorServer, RecordingApp]]]:
    """``recorded("upstream_unavailable")``: a simulator that records what it received."""
    from chatcontract.simulator.app import create_app as create_simulator

    started: list[SimulatorServer] = []

    def make(scenario: str = "ok", **settings: Any) -> tuple[SimulatorServer, RecordingApp]:
        app = RecordingApp(create_simulator(scenario=scenario, **settings))
        server = SimulatorServer(app=app).start()  # type: ignore[arg-type]
        started.append(server)
        return server, app

    yield make
    for server in started:
        server.stop()
