"""client_timeout and stream_interruption through the fault relay, on fast and slow endpoints."""

from __future__ import annotations

import math
import threading
from dataclasses import replace

import httpx2
import orjson
import pytest

from chatcontract.checks.context import CheckContext, SuiteOptions
from chatcontract.checks.faults import check_client_timeout, check_stream_interruption
from chatcontract.checks.runner import run_suite
from chatcontract.contract import Endpoint, load_preset
from chatcontract.target import Target
from fast_server import fast_server

ENDPOINTS = ["simulator", "fast"]


@pytest.fixture(scope="module")
def fast():
    with fast_server() as server:
        yield server


def make_target(base_url, *, secret, simulated, scenario=None, streaming=None):
    contract = load_preset("cometapi")
    contract = replace(contract, endpoint=Endpoint(base_url=base_url))
    if streaming is not None:
        contract = replace(contract, streaming=replace(contract.streaming, **streaming))
    return Target(
        contract=contract,
        contract_path=None,
        secret=secret,
        secret_source="test",
        model="gpt-4.1-nano",
        simulated=simulated,
        scenario=scenario,
    )


@pytest.fixture(params=ENDPOINTS)
def endpoint(request, simulator, fast):
    """A healthy endpoint: the simulator, or a plain server answering in about a millisecond."""
    if request.param == "simulator":
        return make_target(simulator.base_url, secret=simulator.api_key, simulated=True)
    return make_target(fast.base_url, secret="sk-test-fast-000000000000", simulated=False)


def run_check(target, check, *, inner=None, **options):
    ctx = CheckContext.open(target, SuiteOptions(**options), inner=inner)
    try:
        return check(ctx)
    finally:
        ctx.close()


def relay_threads():
    return [t for t in threading.enumerate() if t.name.startswith("chatcontract-relay-")]


class IgnoresDeadlines(httpx2.BaseTransport):
    """An HTTP stack that replaces the caller's deadline with its own read timeout: the kind
    of application bug the checks exist to catch."""

    def __init__(self, read_s: float = 30.0) -> None:
        self._inner = httpx2.HTTPTransport()
        self._read_s = read_s

    def handle_request(self, request):
        request.extensions["timeout"] = {
            "connect": 5.0,
            "read": self._read_s,
            "write": 5.0,
            "pool": 5.0,
        }
        return self._inner.handle_request(request)

    def close(self):
        self._inner.close()


class ReportsTimeoutsAsResets(httpx2.BaseTransport):
    """An HTTP stack whose timeouts surface as a dropped connection."""

    def __init__(self) -> None:
        self._inner = httpx2.HTTPTransport()

    def handle_request(self, request):
        try:
            return self._inner.handle_request(request)
        except httpx2.ReadTimeout as exc:
            raise httpx2.ReadError("connection lost") from exc

    def close(self):
        self._inner.close()


def _chunk(choices, usage=None):
    body = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return b"data: " + orjson.dumps({**body, "choices": choices, "usage": usage}) + b"\n\n"


COMPLETION = (
    _chunk([{"index": 0, "delta": {"content": " (the rest)"}, "finish_reason": "stop"}])
    + _chunk([], {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    + b"data: [DONE]\n\n"
)


class _MakesUpAnEnding(httpx2.SyncByteStream):
    def __init__(self, inner):
        self._inner = inner

    def __iter__(self):
        try:
            yield from self._inner
        except httpx2.RemoteProtocolError:
            yield COMPLETION

    def close(self):
        self._inner.close()


class PapersOverDrops(httpx2.BaseTransport):
    """An HTTP stack that ends a dropped stream with a made-up ending: a truncated answer
    presented as complete."""

    def __init__(self) -> None:
        self._inner = httpx2.HTTPTransport()

    def handle_request(self, request):
        response = self._inner.handle_request(request)
        response.stream = _MakesUpAnEnding(response.stream)
        return response

    def close(self):
        self._inner.close()


# -- client_timeout ----------------------------------------------------------------------------


def test_client_timeout_passes_on_a_healthy_endpoint_of_any_speed(endpoint):
    outcome = run_check(endpoint, check_client_timeout)
    assert outcome.status == "pass", outcome.observed
    assert outcome.evidence["classification"].startswith("transport/timeout/")
    assert outcome.evidence["relay"]["staged"] is True
    assert outcome.evidence["relay"]["released"] is False


def test_client_timeout_uses_the_deadline_it_is_given(endpoint):
    outcome = run_check(endpoint, check_client_timeout, timeout_deadline_ms=80)
    assert outcome.status == "pass", outcome.observed
    assert outcome.evidence["deadline_ms"] == 80
    assert "a 80 ms deadline" in outcome.expected


def test_client_timeout_fails_when_the_deadline_does_not_fire(endpoint):
    outcome = run_check(
        endpoint, check_client_timeout, inner=IgnoresDeadlines(), timeout_deadline_ms=50
    )
    assert outcome.status == "fail"
    assert "the deadline did not fire" in outcome.observed
    assert outcome.evidence["relay"]["released"] is True


def test_client_timeout_fails_when_the_deadline_fires_late(endpoint):
    # 50 ms asked, 600 ms applied: later than 50 + tolerance, earlier than the relay's release.
    outcome = run_check(
        endpoint,
        check_client_timeout,
        inner=IgnoresDeadlines(read_s=0.6),
        timeout_deadline_ms=50,
    )
    assert outcome.status == "fail"
    assert "later than the 50 ms deadline" in outcome.observed
    assert outcome.failure.category == "timeout"


def test_client_timeout_fails_when_the_timeout_is_classified_as_something_else(fast):
    target = make_target(fast.base_url, secret="sk-test-fast-000000000000", simulated=False)
    outcome = run_check(target, check_client_timeout, inner=ReportsTimeoutsAsResets())
    assert outcome.status == "fail"
    assert "not as a timeout" in outcome.observed
    assert outcome.failure.category == "network"


# -- stream_interruption -----------------------------------------------------------------------


def test_stream_interruption_passes_on_a_healthy_endpoint_of_any_speed(endpoint):
    outcome = run_check(endpoint, check_stream_interruption)
    assert outcome.status == "pass", outcome.observed
    cut, stall = outcome.evidence["cut"], outcome.evidence["stall"]
    kind, category, _ = cut["classification"].split("/")
    assert (kind, category) in {("transport", "network"), ("parser", "contract")}
    assert stall["classification"].startswith("transport/timeout/")
    assert cut["relay"]["staged"] and stall["relay"]["staged"]


def test_stream_interruption_fails_when_a_cut_stream_is_taken_as_complete(endpoint):
    outcome = run_check(endpoint, check_stream_interruption, inner=PapersOverDrops())
    assert outcome.status == "fail"
    assert "the cut stream was reported as a success" in outcome.observed


def test_stream_interruption_fails_when_the_idle_deadline_does_not_fire(endpoint):
    outcome = run_check(endpoint, check_stream_interruption, inner=IgnoresDeadlines())
    assert outcome.status == "fail"
    assert "no idle deadline fired" in outcome.observed
    assert outcome.evidence["stall"]["relay"]["released"] is True


def test_stream_interruption_is_skipped_when_the_contract_does_not_stream(fast):
    target = make_target(fast.base_url, secret="sk-x", simulated=False, streaming={"used": False})
    outcome = run_check(target, check_stream_interruption)
    assert outcome.status == "skip"
    assert "streaming is not used" in outcome.observed


def test_stream_interruption_says_why_it_could_not_stage_on_an_error_answer(simulator):
    target = make_target(
        simulator.base_url, secret=simulator.api_key, simulated=True, scenario="server_error"
    )
    outcome = run_check(target, check_stream_interruption)
    assert outcome.status == "skip"
    assert "no SSE event to stage it on" in outcome.observed
    assert "HTTP 500" in outcome.observed


@pytest.mark.parametrize(
    ("first", "classified"),
    [
        (b"data: {not json\n\n", "parser/contract/malformed_chunk"),
        (
            b'data: {"error": {"message": "boom", "type": "server_error", "code": "boom"}}\n\n',
            "api_error/upstream/boom",
        ),
    ],
    ids=["malformed-chunk", "in-band-error"],
)
def test_stream_interruption_is_not_a_second_red_for_a_stream_broken_before_it(first, classified):
    # Every answer's first event breaks the contract: the streaming check names that defect;
    # the cut and the stall, staged after that event, cannot be judged (it said "the cut
    # stream was classified parser/contract/malformed_chunk, not as a drop").
    from raw_servers import in_order, raw_server, response

    body = first + _chunk([{"index": 0, "delta": {"content": "pong"}, "finish_reason": None}])
    answer = response(200, body + COMPLETION, content_type="text/event-stream")
    with raw_server(in_order([answer])) as server:
        target = make_target(server.base_url, secret="sk-test-raw-000000000000", simulated=False)
        outcome = run_check(target, check_stream_interruption)
    assert outcome.status == "skip", outcome.observed
    assert outcome.failure is None
    assert outcome.observed == (
        f"could not stage the interruption: the cut request's stream broke the contract before "
        f"the interruption ({classified}; the streaming check judges that answer); the stall "
        f"request's stream broke the contract before the interruption ({classified}; the "
        "streaming check judges that answer)"
    )


# -- the relay's lifetime and the options ------------------------------------------------------


def test_the_relay_is_stopped_after_each_check_even_when_it_fails(fast):
    class Explodes(httpx2.BaseTransport):
        def handle_request(self, request):
            raise RuntimeError("boom")

    target = make_target(fast.base_url, secret="sk-x", simulated=False)
    for check in (check_client_timeout, check_stream_interruption):
        with pytest.raises(RuntimeError, match="boom"):
            run_check(target, check, inner=Explodes())
        assert relay_threads() == []


def test_the_suite_runs_both_checks_through_the_relay_and_stops_it(fast):
    target = make_target(fast.base_url, secret="sk-test-fast-000000000000", simulated=False)
    report = run_suite(target, SuiteOptions(only=("client_timeout", "stream_interruption")))
    assert {c.id: c.status for c in report.checks} == {
        "client_timeout": "pass",
        "stream_interruption": "pass",
    }
    assert relay_threads() == []


@pytest.mark.parametrize(
    "deadline",
    [0, 9.9, 60_000.1, -5, math.nan, math.inf, 1e30],
    ids=["zero", "below", "above", "negative", "nan", "inf", "huge"],
)
def test_suite_options_refuse_an_absurd_deadline(deadline):
    with pytest.raises(ValueError, match="timeout_deadline_ms must be between 10 and 60000"):
        SuiteOptions(timeout_deadline_ms=deadline)
