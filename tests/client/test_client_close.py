"""An ``AsyncChatClient`` closes its own connections however the application ends: ``async
with``, ``aclose()``, collected while the loop runs, still open when ``asyncio.run`` returns, or
used again in a second loop. A transport the application passed in stays the application's.

The application runs in a subprocess under ``-X dev -W error::ResourceWarning`` (every unclosed
socket or asyncio transport is reported on stderr), against the embedded simulator.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from collections.abc import Iterator

import httpx2
import pytest
from client_helpers import PONG, contract_for, env_for

from chatcontract.client import AsyncChatClient, ChatClient

_APP = """
import asyncio, dataclasses, gc, sys
from chatcontract import AsyncChatClient
from chatcontract.contract import load_preset
from chatcontract.simulator import SimulatorServer

ENDING, STREAM, SCENARIO = sys.argv[1], sys.argv[2] == "stream", sys.argv[3]
MESSAGES = [{"role": "user", "content": "hi"}]


async def call(client):
    try:
        if STREAM:
            async with client.stream(MESSAGES, max_tokens=8) as stream:
                return (await stream.until_done()).content
        return (await client.complete(MESSAGES, max_tokens=8)).content
    except Exception as exc:
        return "failed " + type(exc).__name__


async def main(contract, key):
    client = AsyncChatClient.from_contract(contract, environ={"COMETAPI_KEY": key})
    if ENDING == "async-with":
        async with client:
            print(await call(client))
        return None
    print(await call(client))
    if ENDING == "aclose":
        await client.aclose()
    if ENDING == "collected-in-the-loop":
        del client
        gc.collect()
        return None
    return client  # still open when the loop shuts down


with SimulatorServer(flavor="cometapi", scenario=SCENARIO) as server:
    preset = load_preset("cometapi")
    contract = dataclasses.replace(
        preset, endpoint=dataclasses.replace(preset.endpoint, base_url=server.base_url)
    )
    kept = asyncio.run(main(contract, server.api_key))
    if ENDING == "used-again-in-a-second-loop":
        print(asyncio.run(call(kept)))
    if ENDING != "left-open-at-exit":
        del kept
        gc.collect()
"""

#: What stderr shows when a socket, an asyncio transport or a closing task was left behind.
_LEAKS = (
    "ResourceWarning",
    "unclosed",
    "Exception ignored",
    "Traceback",
    "was never awaited",
    "Task was destroyed",
)


def run_app(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter where every leaked socket is reported."""
    # (PYTHONTRACEMALLOC=5 would say where a leaked socket was opened: 15 times slower.)
    return subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", code, *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def leaks(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(mark in line for mark in _LEAKS)]


@pytest.mark.parametrize(
    ("ending", "mode", "scenario"),
    [
        ("async-with", "complete", "ok"),
        ("aclose", "complete", "ok"),
        ("collected-in-the-loop", "complete", "ok"),
        ("collected-in-the-loop", "stream", "ok"),
        ("collected-after-the-loop", "complete", "ok"),
        ("left-open-at-exit", "complete", "ok"),
        ("left-open-at-exit", "stream", "ok"),
        ("left-open-at-exit", "complete", "server_error"),
        ("used-again-in-a-second-loop", "complete", "ok"),
    ],
    ids=[
        "async-with",
        "aclose",
        "collected-in-the-loop",
        "stream-collected-in-the-loop",
        "collected-after-the-loop",
        "left-open-at-exit",
        "stream-left-open-at-exit",
        "failed-call-left-open-at-exit",
        "used-again-in-a-second-loop",
    ],
)
def test_an_async_client_leaves_no_socket_open_however_the_application_ends(
    ending: str, mode: str, scenario: str
) -> None:
    done = run_app(_APP, ending, mode, scenario)
    assert done.returncode == 0, done.stderr
    answers = done.stdout.split("\n")[:-1]
    assert len(answers) == (2 if ending == "used-again-in-a-second-loop" else 1), done.stdout
    if scenario == "ok":
        assert all(answer and not answer.startswith("failed") for answer in answers)
    assert leaks(done.stderr) == []


class _RecordingTransport(httpx2.MockTransport):
    """The application's own transport: records whether anyone closed it."""

    def __init__(self) -> None:
        self.closed = 0
        self.upstream = httpx2.Client()
        super().__init__(self._forward)

    def _forward(self, request: httpx2.Request) -> httpx2.Response:
        answer = self.upstream.post(
            str(request.url), content=request.content, headers=dict(request.headers)
        )
        return httpx2.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1


@pytest.fixture
def own_transport() -> Iterator[_RecordingTransport]:
    transport = _RecordingTransport()
    with transport.upstream:
        yield transport


def test_an_async_client_dropped_without_aclose_leaves_the_applications_transport_open(
    sims, own_transport
):
    server = sims()
    transport = own_transport
    contract, environ = contract_for(server.base_url), env_for(server.api_key)

    async def use_and_drop() -> None:
        client = AsyncChatClient.from_contract(contract, environ=environ, transport=transport)
        assert (await client.complete(PONG, max_tokens=16)).content
        del client
        gc.collect()

    asyncio.run(use_and_drop())  # the loop shuts down, with the client collected in it
    gc.collect()
    assert transport.closed == 0


def test_a_sync_client_dropped_without_close_leaves_the_applications_transport_open(
    sims, own_transport
):
    server = sims()
    transport = own_transport
    client = ChatClient.from_contract(
        contract_for(server.base_url), environ=env_for(server.api_key), transport=transport
    )
    assert client.complete(PONG, max_tokens=16).content
    del client
    gc.collect()
    assert transport.closed == 0
