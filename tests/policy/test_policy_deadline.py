import pytest

from chatcontract.policy import MAX_RESERVE_SHARE, MIN_ATTEMPT_S, Deadline, effective_reserve


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_remaining_counts_down_on_the_injected_clock():
    clock = FakeClock()
    deadline = Deadline(2.0, clock=clock)
    assert deadline.remaining() == pytest.approx(2.0)
    clock.now += 0.75
    assert deadline.remaining() == pytest.approx(1.25)
    assert deadline.elapsed() == pytest.approx(0.75)
    assert not deadline.expired


def test_expired_once_the_clock_passes_the_end_and_remaining_never_goes_negative():
    clock = FakeClock()
    deadline = Deadline(1.0, clock=clock)
    clock.now += 5
    assert deadline.expired
    assert deadline.remaining() == 0.0


def test_an_attempt_gets_what_is_left_minus_the_fallback_reserve():
    clock = FakeClock()
    deadline = Deadline(10.0, clock=clock)
    assert deadline.for_attempt(reserve_s=4.0) == pytest.approx(6.0)
    assert deadline.for_attempt() == pytest.approx(10.0)
    clock.now += 3
    assert deadline.for_attempt(reserve_s=4.0) == pytest.approx(3.0)


def test_the_reserve_never_pushes_an_attempt_below_the_floor_nor_above_what_is_left():
    clock = FakeClock()
    deadline = Deadline(10.0, clock=clock)
    clock.now += 10.0 - 2 * MIN_ATTEMPT_S
    # 0.2 s left, a 5 s reserve (capped at 5 s of this 10 s call): the floor, not less.
    assert deadline.for_attempt(reserve_s=5.0) == pytest.approx(MIN_ATTEMPT_S)
    clock.now += 1.5 * MIN_ATTEMPT_S
    assert deadline.for_attempt(reserve_s=5.0) == pytest.approx(MIN_ATTEMPT_S / 2)


@pytest.mark.parametrize(
    ("reserve_s", "total_s", "expected"),
    [
        (5.0, 60.0, 5.0),
        (5.0, 10.0, 5.0),
        (5.0, 5.0, 2.5),
        (5.0, 2.0, 1.0),
        (5.0, 0.1, 0.05),
        (0.0, 5.0, 0.0),
        (-1.0, 5.0, 0.0),
    ],
    ids=["long-call", "exactly-half", "equal", "shorter", "tiny", "no-reserve", "negative"],
)
def test_the_fallback_reserve_shrinks_with_the_deadline(reserve_s, total_s, expected):
    assert effective_reserve(reserve_s, total_s) == pytest.approx(expected)
    assert Deadline(total_s, clock=FakeClock()).reserve(reserve_s) == pytest.approx(expected)


@pytest.mark.parametrize("total_s", [0.5, 1.0, 5.0], ids=["0.5s", "1s", "5s"])
def test_a_deadline_at_or_below_the_reserve_gives_the_primary_half_not_the_floor(total_s):
    deadline = Deadline(total_s, clock=FakeClock())
    assert deadline.for_attempt(reserve_s=5.0) == pytest.approx(total_s * MAX_RESERVE_SHARE)


def test_no_attempt_once_expired():
    clock = FakeClock()
    deadline = Deadline(1.0, clock=clock)
    clock.now += 1.0
    assert deadline.for_attempt() is None


@pytest.mark.parametrize("total", [0, -1.0], ids=["zero", "negative"])
def test_a_deadline_needs_positive_seconds(total):
    with pytest.raises(ValueError, match="positive"):
        Deadline(total)


def test_floor_and_repr_are_as_given():
    clock = FakeClock()
    deadline = Deadline(2, clock=clock, floor_s=0.3)
    assert deadline.floor_s == 0.3
    assert deadline.total_s == 2.0
    assert deadline.started_at == 100.0
    assert deadline.ends_at == 102.0
    assert deadline.now() == 100.0
    clock.now += 1.9
    assert deadline.for_attempt(reserve_s=1.0) == pytest.approx(0.1)  # what is left, not more
    assert repr(deadline) == "Deadline(total_s=2, remaining=0.100)"


def test_expired_exactly_at_the_end_moment():
    clock = FakeClock()
    deadline = Deadline(1.0, clock=clock)
    clock.now += 1.0
    assert deadline.expired
    assert deadline.remaining() == 0.0


def test_elapsed_counts_from_the_start_on_any_clock():
    clock = FakeClock(now=10.0)
    deadline = Deadline(60.0, clock=clock)
    clock.now += 25.0
    assert deadline.elapsed() == pytest.approx(25.0)


def test_not_expired_while_any_time_is_left():
    clock = FakeClock()
    deadline = Deadline(2.0, clock=clock)
    clock.now += 1.5
    assert not deadline.expired
    assert deadline.for_attempt() == pytest.approx(0.5)
