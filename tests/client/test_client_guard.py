import httpx2
import pytest

from chatcontract.client._guard import (
    WATCH_EXTENSION,
    AsyncGuardTransport,
    AttemptDeadlineError,
    AttemptWatch,
    FirstTokenTimeoutError,
    GuardTransport,
)
from chatcontract.failures import DeadlineExceeded, classify_exception


class FakeClock:
    def __init__(self):
        self.now = 10.0

    def __call__(self):
        return self.now


def test_the_watch_names_the_limit_that_passed():
    clock = FakeClock()
    watch = AttemptWatch(clock=clock, budget_s=2.0, first_token_s=0.5)
    assert watch.check() == "ok"
    clock.now += 0.5
    assert watch.check() == "first_token"
    watch.token_seen = True
    assert watch.check() == "ok"
    clock.now += 1.5
    assert watch.check() == "deadline"


def test_without_a_first_token_limit_only_the_budget_counts():
    clock = FakeClock()
    watch = AttemptWatch(clock=clock, budget_s=1.0, first_token_s=None)
    clock.now += 0.99
    assert watch.check() == "ok"


def test_guard_errors_read_as_timeouts_to_the_classifier():
    deadline = AttemptDeadlineError("late")
    assert isinstance(deadline, DeadlineExceeded) and isinstance(deadline, httpx2.ReadTimeout)
    assert classify_exception(deadline).code == "deadline"
    assert classify_exception(FirstTokenTimeoutError("quiet")).code == "read_timeout"


def test_the_guard_transport_stops_a_body_once_the_budget_passed():
    clock = FakeClock()

    def chunks():
        for piece in (b"a", b"b", b"c"):
            yield piece
            clock.now += 1.0

    transport = GuardTransport(
        httpx2.MockTransport(lambda request: httpx2.Response(200, content=chunks())),
        owns_inner=False,
    )
    watch = AttemptWatch(clock=clock, budget_s=1.5, first_token_s=None)
    with httpx2.Client(transport=transport) as client:
        request = client.build_request("GET", "http://x.test/", extensions={WATCH_EXTENSION: watch})
        response = client.send(request, stream=True)
        body = response.iter_bytes()
        seen = [next(body), next(body)]
        with pytest.raises(AttemptDeadlineError):
            next(body)
        response.close()
    assert seen == [b"a", b"b"]


@pytest.mark.anyio
async def test_the_async_guard_transport_stops_a_body_once_the_budget_passed():
    clock = FakeClock()

    async def chunks():
        for piece in (b"a", b"b", b"c"):
            yield piece
            clock.now += 1.0

    transport = AsyncGuardTransport(
        httpx2.MockTransport(lambda request: httpx2.Response(200, content=chunks())),
        owns_inner=False,
    )
    watch = AttemptWatch(clock=clock, budget_s=1.5, first_token_s=None)
    async with httpx2.AsyncClient(transport=transport) as client:
        request = client.build_request("GET", "http://x.test/", extensions={WATCH_EXTENSION: watch})
        response = await client.send(request, stream=True)
        body = response.aiter_bytes()
        seen = [await anext(body), await anext(body)]
        with pytest.raises(AttemptDeadlineError):
            await anext(body)
        await response.aclose()
    assert seen == [b"a", b"b"]
    assert watch.fired == "deadline"


@pytest.mark.parametrize(
    ("first_token_s", "idle_s", "limits"),
    [(None, None, False), (0.5, None, True), (None, 0.5, True), (0.5, 0.5, True)],
    ids=["body-only", "first-token", "idle", "both"],
)
def test_only_a_stream_limit_bounds_the_wait_for_the_next_piece(first_token_s, idle_s, limits):
    watch = AttemptWatch(
        clock=FakeClock(), budget_s=2.0, first_token_s=first_token_s, idle_s=idle_s
    )
    assert watch.limits_reads is limits
    if not limits:
        assert watch.read_limit() is None


@pytest.mark.anyio
async def test_on_the_aiohttp_wire_the_body_checks_the_watch_itself_with_no_layer_of_its_own():
    from chatcontract.transport._aiohttp import AiohttpTransport, _Body
    from raw_servers import raw_server, trickling_body

    clock = FakeClock()
    watch = AttemptWatch(clock=clock, budget_s=1.5, first_token_s=None)
    wire = AiohttpTransport()
    transport = AsyncGuardTransport(wire, owns_inner=True)
    with raw_server(trickling_body(0.01, size=50)) as server:
        async with httpx2.AsyncClient(transport=transport) as client:
            request = client.build_request("GET", server.url, extensions={WATCH_EXTENSION: watch})
            response = await client.send(request, stream=True)
            stream = response.stream
            body = response.aiter_raw()
            await anext(body)
            clock.now += 2.0  # the attempt's budget passes before the next piece
            with pytest.raises(AttemptDeadlineError):
                await anext(body)
            await response.aclose()
    assert watch.fired == "deadline"
    assert isinstance(getattr(stream, "_stream", stream), _Body)
