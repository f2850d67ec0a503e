"""``instrument()`` / ``ainstrument()`` clients close their own sockets however the application
ends (the openai SDK's clients are rarely closed), and never close a transport the application
passed in.

The applications run in a subprocess under ``-X dev -W error::ResourceWarning`` (every unclosed
socket or asyncio transport is reported on stderr), against the embedded simulator.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys

import httpx2
import openai
import pytest

from chatcontract.instrumentation import ainstrument, instrument

_ASYNC_APP = """
import asyncio, gc, sys
import openai
from chatcontract import ainstrument
from chatcontract.simulator import SimulatorServer

ENDING, STREAM = sys.argv[1], sys.argv[2] == "stream"
MESSAGES = [{"role": "user", "content": "hi"}]


async def call(sdk):
    if STREAM:
        stream = await sdk.chat.completions.create(
            model="gpt-4.1-nano", messages=MESSAGES, max_tokens=8, stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    answer = await sdk.chat.completions.create(
        model="gpt-4.1-nano", messages=MESSAGES, max_tokens=8
    )
    return answer.choices[0].message.content


async def main(server):
    sdk = openai.AsyncOpenAI(
        base_url=server.base_url, api_key=server.api_key, max_retries=0,
        http_client=ainstrument(),
    )
    if ENDING == "async-with":
        async with sdk:
            print(await call(sdk))
        return None
    print(await call(sdk))
    if ENDING == "close":
        await sdk.close()
    if ENDING == "collected-in-the-loop":
        del sdk
        gc.collect()
        return None
    return sdk  # still open when the loop shuts down


with SimulatorServer(flavor="cometapi", scenario="ok") as server:
    kept = asyncio.run(main(server))
    if ENDING == "used-again-in-a-second-loop":
        print(asyncio.run(call(kept)))
    if ENDING != "left-open-at-exit":
        del kept
        gc.collect()
"""

_LEAKS = (
    "ResourceWarning",
    "unclosed",
    "Exception ignored",
    "Traceback",
    "was never awaited",
    "Task was destroyed",
)


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", code, *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("ending", "mode"),
    [
        ("async-with", "complete"),
        ("close", "complete"),
        ("collected-in-the-loop", "complete"),
        ("collected-in-the-loop", "stream"),
        ("collected-after-the-loop", "complete"),
        ("left-open-at-exit", "complete"),
        ("left-open-at-exit", "stream"),
        ("used-again-in-a-second-loop", "complete"),
    ],
    ids=[
        "async-with",
        "close",
        "collected-in-the-loop",
        "stream-collected-in-the-loop",
        "collected-after-the-loop",
        "left-open-at-exit",
        "stream-left-open-at-exit",
        "used-again-in-a-second-loop",
    ],
)
def test_an_ainstrument_client_leaves_no_socket_open_however_the_application_ends(
    ending: str, mode: str
) -> None:
    done = _run(_ASYNC_APP, ending, mode)
    assert done.returncode == 0, done.stderr
    answers = done.stdout.split("\n")[:-1]
    assert len(answers) == (2 if ending == "used-again-in-a-second-loop" else 1), done.stdout
    assert all(answers)
    leaks = [line for line in done.stderr.splitlines() if any(m in line for m in _LEAKS)]
    assert leaks == []


# -- a transport the application passed in is its own ------------------------------------------

COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1_760_000_000,
    "model": "gpt-4.1-nano",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "pong"}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}  # fmt: skip
MESSAGES = [{"role": "user", "content": "Reply with exactly: pong"}]


class _OwnTransport(httpx2.MockTransport):
    """The application's transport: answers every call, records whether anyone closed it."""

    def __init__(self) -> None:
        super().__init__(lambda request: httpx2.Response(200, json=COMPLETION))
        self.closed = 0

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1


def test_an_instrument_client_collected_leaves_the_applications_transport_open():
    transport = _OwnTransport()
    sdk = openai.OpenAI(base_url="http://sim.test/v1", api_key="sk-test-key-000",
                        max_retries=0, http_client=instrument(transport=transport))  # fmt: skip
    answer = sdk.chat.completions.create(model="gpt-4.1-nano", messages=MESSAGES)
    assert answer.choices[0].message.content == "pong"
    del sdk, answer
    gc.collect()
    assert transport.closed == 0


def test_an_ainstrument_client_collected_leaves_the_applications_transport_open():
    transport = _OwnTransport()

    async def use_and_drop() -> None:
        sdk = openai.AsyncOpenAI(base_url="http://sim.test/v1", api_key="sk-test-key-000",
                                 max_retries=0, http_client=ainstrument(transport=transport))  # fmt: skip
        answer = await sdk.chat.completions.create(model="gpt-4.1-nano", messages=MESSAGES)
        assert answer.choices[0].message.content == "pong"
        del sdk
        gc.collect()

    asyncio.run(use_and_drop())  # the loop shuts down, with the client collected in it
    gc.collect()
    assert transport.closed == 0


def test_closing_an_instrument_client_still_closes_the_transport_it_was_given():
    # httpx2's rule: closing a client closes its transport; only an unclosed one is left alone.
    transport = _OwnTransport()
    instrument(transport=transport).close()
    assert transport.closed == 1
