"""An observed call leaves nothing for the cyclic garbage collector: once the caller drops the
response, every object the observation made is freed by reference counting.

Objects caught in a reference cycle wait for a collection, and collections cost CPU in
proportion to what they walk: a cycle per call (the request's extensions holding the call's
sink, which held them back) made the openai SDK run 30 young-generation collections per
1,000 calls instead of none.
"""

import asyncio
import gc
from collections import Counter
from collections.abc import Callable, Iterator

import httpx2
import openai
import pytest

from chatcontract import instrument
from chatcontract.contract import load_preset
from chatcontract.simulator import DEFAULT_API_KEY
from chatcontract.transport import AsyncInstrumentedTransport, InstrumentedTransport

COMET = load_preset("cometapi")
BODY = {
    "model": "gpt-4.1-nano",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Reply with exactly: pong"}],
}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
CALLS = 5


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """``gc.garbage`` of what becomes unreachable during the test, kept for inspection."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()


def _cyclic(garbage: list[object], calls: Callable[[], None]) -> Counter[str]:
    calls()
    gc.collect()
    return Counter(type(item).__qualname__ for item in garbage)


@pytest.mark.parametrize("stream", [False, True], ids=["completion", "stream"])
def test_a_sync_observed_call_leaves_no_cycle(simulator, saved_garbage, stream):
    exchanges = []
    url = simulator.base_url + "/chat/completions"
    transport = InstrumentedTransport(contract=COMET, sinks=[exchanges.append])
    with httpx2.Client(transport=transport, timeout=10) as client:

        def calls() -> None:
            for _ in range(CALLS):
                if stream:
                    with client.stream("POST", url, json=STREAM_BODY, headers=AUTH) as response:
                        for _ in response.iter_raw():
                            pass
                else:
                    client.post(url, json=BODY, headers=AUTH)
            exchanges.clear()  # the sink's own list: nothing of the calls is held past here

        assert _cyclic(saved_garbage, calls) == Counter()


@pytest.mark.parametrize("stream", [False, True], ids=["completion", "stream"])
def test_an_async_observed_call_leaves_no_cycle(simulator, saved_garbage, stream):
    exchanges = []
    url = simulator.base_url + "/chat/completions"

    async def run() -> None:
        transport = AsyncInstrumentedTransport(contract=COMET, sinks=[exchanges.append])
        async with httpx2.AsyncClient(transport=transport, timeout=10) as client:
            for _ in range(CALLS):
                if stream:
                    async with client.stream(
                        "POST", url, json=STREAM_BODY, headers=AUTH
                    ) as response:
                        async for _ in response.aiter_raw():
                            pass
                else:
                    await client.post(url, json=BODY, headers=AUTH)
        exchanges.clear()

    asyncio.run(run())  # the loop's own start-up cycles are collected before the calls
    found = _cyclic(saved_garbage, lambda: asyncio.run(run()))
    ours = {name: count for name, count in found.items() if name in _OURS}
    assert ours == {}


# What an observed call builds (the async test's loop makes cycles of its own at start-up and
# close: only these are judged there).
_OURS = frozenset(
    (
        "_CallSinks",
        "CallObserver",
        "Exchange",
        "RequestFacts",
        "ResponseFacts",
        "Timings",
        "ParsedBody",
        "Completion",
        "CompletionResult",
        "Usage",
        "PhaseClock",
        "StreamParser",
    )
)


def test_the_openai_sdk_through_instrument_leaves_no_cycle(simulator, saved_garbage):
    http = instrument(contract=COMET, event_log=False)
    sdk = openai.OpenAI(
        base_url=simulator.base_url, api_key=DEFAULT_API_KEY, max_retries=0, http_client=http
    )
    with sdk:

        def calls() -> None:
            for _ in range(CALLS):
                sdk.chat.completions.create(**BODY)  # type: ignore[call-overload]

        assert _cyclic(saved_garbage, calls) == Counter()
