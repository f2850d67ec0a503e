"""Delivery plans are pure data: framing and timing of each fault, without I/O."""

from __future__ import annotations

import pytest

from chatcontract.simulator.delivery import (
    DONE_EVENT,
    Chunk,
    Hangup,
    Start,
    Wait,
    fault_index,
    plan_body,
    plan_stream,
)
from chatcontract.simulator.scenarios import SCENARIOS, Delivery, faulted

EVENTS = [f'data: {{"n": {i}}}\n\n'.encode() for i in range(6)]
ERROR = b'data: {"error": {"message": "boom"}}\n\n'


def stream(delivery: Delivery, delay: float = 1.0):
    return plan_stream(delivery, headers=[], events=EVENTS, delay_s=delay, error_event=ERROR)


def sent(plan) -> list[bytes]:
    return [step.data for step in plan if isinstance(step, Chunk) and step.data]


def test_normal_stream_sends_every_event_then_done_then_ends():
    plan = stream(Delivery.NORMAL)
    assert isinstance(plan[0], Start)
    assert plan[0].status == 200
    assert sent(plan) == [*EVENTS, DONE_EVENT]
    assert plan[-1] == Chunk(b"", more=False)


def test_no_done_leaves_out_only_the_terminator():
    assert sent(stream(Delivery.NO_DONE)) == EVENTS


def test_slow_spreads_the_delay_over_every_gap_with_pings():
    waits = [s for s in stream(Delivery.SLOW, delay=1.4) if isinstance(s, Wait)]
    assert len(waits) == len(EVENTS) + 1
    assert sum(w.seconds for w in waits) == pytest.approx(1.4)
    assert all(w.pings for w in waits)


def test_slow_first_token_waits_once_after_the_role_chunk():
    plan = stream(Delivery.SLOW_FIRST_TOKEN, delay=2.0)
    assert plan[1] == Chunk(EVENTS[0])
    assert plan[2] == Wait(2.0, pings=True)
    assert sent(plan) == [*EVENTS, DONE_EVENT]


def test_stall_is_silent_and_in_the_middle():
    plan = stream(Delivery.STALL, delay=3.0)
    index = plan.index(Wait(3.0, pings=False))
    assert sent(plan[:index]) == EVENTS[:3]
    assert sent(plan[index:]) == [*EVENTS[3:], DONE_EVENT]


def test_cut_sends_half_then_hangs_up_without_done():
    plan = stream(Delivery.CUT)
    assert sent(plan) == EVENTS[:3]
    assert plan[-1] == Hangup()


def test_malformed_breaks_exactly_one_event():
    broken = [e for e in sent(stream(Delivery.MALFORMED)) if e not in (*EVENTS, DONE_EVENT)]
    assert len(broken) == 1
    assert broken[0].startswith(b"data: {")
    assert broken[0].endswith(b"\n\n")


def test_inband_error_follows_the_first_content_chunk():
    assert sent(stream(Delivery.INBAND_ERROR)) == [*EVENTS[:2], ERROR, DONE_EVENT]


def test_a_stream_needs_at_least_one_event():
    with pytest.raises(ValueError, match="at least one"):
        plan_stream(Delivery.NORMAL, headers=[], events=[], delay_s=0, error_event=ERROR)


BODY = b'{"id": "chatcmpl-1", "choices": []}'
START = Start(200, [(b"content-length", str(len(BODY)).encode())])


def test_slow_body_waits_before_the_status_line():
    plan = plan_body(Delivery.SLOW, start=START, body=BODY, delay_s=2.0)
    assert plan == (Wait(2.0), START, Chunk(BODY, more=False))


def test_stalled_body_sends_half_waits_then_the_rest():
    plan = plan_body(Delivery.STALL, start=START, body=BODY, delay_s=1.0)
    assert b"".join(sent(plan)) == BODY
    assert isinstance(plan[2], Wait)


def test_cut_body_promises_the_full_length_but_hangs_up_halfway():
    plan = plan_body(Delivery.CUT, start=START, body=BODY, delay_s=0)
    assert plan[0] is START
    assert len(b"".join(sent(plan))) < len(BODY)
    assert plan[-1] == Hangup()


@pytest.mark.parametrize(
    ("delivery", "expected"),
    [(Delivery.NO_RESPONSE, (Wait(9.0), Hangup())), (Delivery.RESET, (Hangup(),))],
    ids=["no_response", "reset"],
)
def test_connection_faults_never_send_a_status_line(delivery, expected):
    assert plan_body(delivery, start=START, body=BODY, delay_s=9.0) == expected


def test_plain_deliveries_have_no_body_plan():
    with pytest.raises(ValueError, match="plain response"):
        plan_body(Delivery.NORMAL, start=START, body=BODY, delay_s=0)


@pytest.mark.parametrize(
    ("delivery", "after", "expected"),
    [
        (Delivery.CUT, None, 3),
        (Delivery.INBAND_ERROR, None, 2),
        (Delivery.CUT, 0, 1),
        (Delivery.CUT, 2, 3),
        (Delivery.STALL, 99, 6),
    ],
    ids=["half-way", "inband-after-first-token", "after-zero-keeps-role", "after-two", "clamped"],
)
def test_the_fault_index_counts_tokens_after_the_role_chunk(delivery, after, expected):
    assert fault_index(delivery, len(EVENTS), after) == expected


@pytest.mark.parametrize("after", [0, 2, 4])
def test_cut_stall_malformed_and_inband_strike_after_n_tokens(after):
    def plan(delivery):
        return plan_stream(
            delivery, headers=[], events=EVENTS, delay_s=1.0, error_event=ERROR, after_tokens=after
        )

    keep = EVENTS[: 1 + after]
    assert sent(plan(Delivery.CUT)) == keep
    stall = plan(Delivery.STALL)
    assert sent(stall[: stall.index(Wait(1.0))]) == keep
    assert sent(plan(Delivery.MALFORMED))[: 1 + after] == keep
    assert sent(plan(Delivery.MALFORMED))[1 + after] != EVENTS[1 + after]
    assert sent(plan(Delivery.INBAND_ERROR)) == [*keep, ERROR, DONE_EVENT]


@pytest.mark.parametrize(
    ("name", "seen", "elapsed", "window", "expected"),
    [
        ("server_error_once", 0, None, 0.0, True),
        ("server_error_once", 1, 0.0, 0.0, False),
        ("reset_once", 1, 5.0, 0.0, False),
        ("rate_limit_retry_after", 0, None, 1.0, True),
        ("rate_limit_retry_after", 1, 0.999, 1.0, True),
        ("rate_limit_retry_after", 1, 1.0, 1.0, False),
        ("flapping_outage", 3, 10.0, 60.0, True),
        ("flapping_outage", 4, 10.0, 60.0, False),
        ("flapping_outage", 9, 10.0, 60.0, False),
        ("flapping_outage", 5, 60.0, 60.0, False),
        ("rate_limit", 100, 1e6, 0.0, True),
    ],
    ids=[
        "once-first",
        "once-second",
        "reset-once-second",
        "window-first",
        "window-inside",
        "window-over",
        "outage-down",
        "outage-fifth-through",
        "outage-tenth-through",
        "outage-over",
        "always",
    ],
)
def test_faulted_reads_counts_and_windows(name, seen, elapsed, window, expected):
    assert faulted(SCENARIOS[name], seen=seen, elapsed_s=elapsed, window_s=window) is expected


def test_retry_after_headers_need_a_window():
    from chatcontract.simulator.scenarios import Scenario

    with pytest.raises(ValueError, match="fault window"):
        Scenario(name="x", summary="s", non_stream="n", stream="s", retry_after="ms")
