"""``LoopCloser``: the close function runs once, in the event loop that used the transports,
however the owner ends."""

from __future__ import annotations

import asyncio
import gc
import sys

import pytest

from chatcontract._loopclose import LoopCloser


class Closes:
    """A close function recording the loop each call ran in."""

    def __init__(self) -> None:
        self.loops: list[asyncio.AbstractEventLoop] = []

    async def __call__(self) -> None:
        self.loops.append(asyncio.get_running_loop())


def test_the_loop_shutting_down_closes_what_was_left_open():
    close = Closes()
    closer = LoopCloser(close)

    async def use() -> asyncio.AbstractEventLoop:
        await closer.enter()
        await closer.enter()  # armed once per loop
        return asyncio.get_running_loop()

    loop = asyncio.run(use())
    assert close.loops == [loop]


def test_an_owner_collected_while_the_loop_runs_is_closed_in_that_loop():
    close = Closes()

    async def use_and_drop() -> asyncio.AbstractEventLoop:
        closer = LoopCloser(close)
        await closer.enter()
        del closer
        gc.collect()
        for _ in range(3):  # the loop runs the close it was handed
            await asyncio.sleep(0)
        assert close.loops == [asyncio.get_running_loop()]
        return asyncio.get_running_loop()

    loop = asyncio.run(use_and_drop())
    assert close.loops == [loop]


def test_aclose_closes_now_and_the_loop_does_not_close_again():
    close = Closes()
    closer = LoopCloser(close)

    async def use() -> None:
        await closer.enter()
        await closer.aclose()
        assert len(close.loops) == 1

    asyncio.run(use())
    assert len(close.loops) == 1


def test_each_loop_that_used_the_transports_closes_them():
    close = Closes()
    closer = LoopCloser(close)

    async def use() -> asyncio.AbstractEventLoop:
        await closer.enter()
        return asyncio.get_running_loop()

    loops = [asyncio.run(use()), asyncio.run(use())]
    assert close.loops == loops


@pytest.mark.parametrize("armed", [False, True], ids=["never-used", "used"])
def test_aclose_closes_whether_or_not_a_request_was_made(armed):
    close = Closes()
    closer = LoopCloser(close)

    async def use() -> None:
        if armed:
            await closer.enter()
        await closer.aclose()

    asyncio.run(use())
    assert len(close.loops) == 1


def test_armed_says_whether_enter_has_anything_left_to_do():
    closer = LoopCloser(Closes())

    async def use() -> list[bool]:
        seen = [closer.armed()]
        await closer.enter()
        return [*seen, closer.armed()]

    assert asyncio.run(use()) == [False, True]


def test_a_loop_that_finalizes_no_async_generators_has_nothing_to_arm():
    closer = LoopCloser(Closes())

    async def use() -> bool:
        hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=None, finalizer=None)
        try:
            return closer.armed()
        finally:
            sys.set_asyncgen_hooks(*hooks)

    assert asyncio.run(use()) is True
