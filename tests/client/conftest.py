"""Fixtures for the client tests: a pool of real simulators on 127.0.0.1, one per setting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chatcontract.simulator import SimulatorServer

SimPool = Callable[..., SimulatorServer]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sims() -> Iterator[SimPool]:
    """``sims(scenario="quota_exhausted", flavor="openai")``: a running server, started once
    per distinct setting for the whole session."""
    servers: dict[tuple[Any, ...], SimulatorServer] = {}

    def get(scenario: str = "ok", flavor: str = "cometapi", **settings: Any) -> SimulatorServer:
        key = (scenario, flavor, tuple(sorted(settings.items())))
        if key not in servers:
            servers[key] = SimulatorServer(flavor=flavor, scenario=scenario, **settings).start()
        return servers[key]

    yield get
    # Each stop waits for uvicorn's shutdown; stop them side by side.
    with ThreadPoolExecutor(max_workers=len(servers) or 1) as pool:
        list(pool.map(SimulatorServer.stop, servers.values()))
