"""Fixtures for the simulator tests: in-process clients (fast) and real servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2
import pytest
from sim_helpers import AUTH

from chatcontract.simulator import SimulatorServer, create_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


ClientFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx2.AsyncClient]]


@pytest.fixture
def sim() -> ClientFactory:
    """``async with sim(flavor=..., scenario=...) as client``: the app served in-process."""

    @contextlib.asynccontextmanager
    async def make(
        *, headers: dict[str, str] | None = None, **settings: Any
    ) -> AsyncIterator[httpx2.AsyncClient]:
        transport = httpx2.ASGITransport(app=create_app(**settings))
        async with httpx2.AsyncClient(
            transport=transport,
            base_url="http://simulator",
            headers=AUTH if headers is None else headers,
        ) as client:
            yield client

    return make


def _server(flavor: str) -> Iterator[SimulatorServer]:
    with SimulatorServer(flavor=flavor, ping_interval_ms=50) as server:
        yield server


@pytest.fixture(scope="session")
def comet_server() -> Iterator[SimulatorServer]:
    """A real cometapi simulator on 127.0.0.1 for the whole session (50 ms keep-alive interval)."""
    yield from _server("cometapi")


@pytest.fixture(scope="session")
def openai_server() -> Iterator[SimulatorServer]:
    """A real openai-flavored simulator on 127.0.0.1 for the whole session."""
    yield from _server("openai")


@pytest.fixture
def live(comet_server: SimulatorServer) -> Iterator[httpx2.Client]:
    """A sync client on the real cometapi server, bounded by a short timeout."""
    with httpx2.Client(base_url=comet_server.root_url, headers=AUTH, timeout=5.0) as client:
        yield client
