import pytest

from chatcontract.policy import MIN_ATTEMPT_S, Deadline


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
    deadline = Deadline(1.0, clock=clock)
    assert deadline.for_attempt(reserve_s=5.0) == pytest.approx(MIN_ATTEMPT_S)
    clock.now += 1.0 - MIN_ATTEMPT_S / 2
    assert deadline.for_attempt(reserve_s=5.0) == pytest.approx(MIN_ATTEMPT_S / 2)


def test_no_attempt_once_expired():
    clock = FakeClock()
    deadline = Deadline(1.0, clock=clock)
    clock.now += 1.0
    assert deadline.for_attempt() is None


@pytest.mark.parametrize("total", [0, -1.0], ids=["zero", "negative"])
def test_a_deadline_needs_positive_seconds(total):
    with pytest.raises(ValueError, match="positive"):
        Deadline(total)
