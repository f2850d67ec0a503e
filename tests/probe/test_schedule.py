"""The scheduler: grid + jitter, driven by a fake clock, never sleeping."""

from __future__ import annotations

import random

import pytest

from chatcontract.probe import Scheduler


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_first_cycle_is_due_at_once() -> None:
    clock = Clock()
    scheduler = Scheduler(clock=clock, rng=random.Random(1), interval_s=60)
    assert scheduler.is_due()
    assert scheduler.seconds_until_due() == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4], ids=lambda s: f"seed{s}")
def test_due_times_stay_within_the_jitter_window_of_their_grid_point(seed: int) -> None:
    clock = Clock(5_000.0)
    scheduler = Scheduler(clock=clock, rng=random.Random(seed), interval_s=60, jitter=0.2)
    for slot in range(1, 200):
        clock.now = scheduler.next_due()
        due = scheduler.advance()
        grid = 5_000.0 + slot * 60
        assert grid <= due <= grid + 0.2 * 60
        assert scheduler.slot == slot


def test_jitter_spreads_due_times() -> None:
    clock = Clock()
    scheduler = Scheduler(clock=clock, rng=random.Random(7), interval_s=60, jitter=0.5)
    offsets = set()
    for _ in range(20):
        clock.now = scheduler.next_due()
        offsets.add(round(scheduler.advance() % 60, 3))
    assert len(offsets) > 10


def test_zero_jitter_gives_the_exact_grid() -> None:
    clock = Clock(0.0)
    scheduler = Scheduler(clock=clock, rng=random.Random(), interval_s=30, jitter=0)
    dues = []
    for _ in range(4):
        clock.now = scheduler.next_due()
        dues.append(scheduler.advance())
    assert dues == [30.0, 60.0, 90.0, 120.0]


def test_a_late_cycle_skips_missed_slots_instead_of_bursting() -> None:
    clock = Clock(0.0)
    scheduler = Scheduler(clock=clock, rng=random.Random(), interval_s=10, jitter=0)
    clock.now = 95.0  # the process was stalled for nine intervals
    due = scheduler.advance()
    assert due == 100.0
    assert not scheduler.is_due(99.9)
    assert scheduler.is_due(100.0)


def test_seconds_until_due_counts_down_with_the_clock() -> None:
    clock = Clock(0.0)
    scheduler = Scheduler(clock=clock, rng=random.Random(), interval_s=60, jitter=0)
    scheduler.advance()
    clock.now = 15.0
    assert scheduler.seconds_until_due() == 45.0
    clock.now = 75.0
    assert scheduler.seconds_until_due() == 0.0


@pytest.mark.parametrize(
    ("interval", "jitter"),
    [(0, 0.1), (-5, 0.1), (60, -0.1), (60, 0.75), (float("inf"), 0.1)],
    ids=["zero-interval", "negative-interval", "negative-jitter", "jitter-too-big", "inf"],
)
def test_bad_settings_are_refused(interval: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        Scheduler(clock=Clock(), rng=random.Random(), interval_s=interval, jitter=jitter)


def test_a_clock_stepped_back_does_not_stop_probing_for_the_step() -> None:
    # NTP steps the clock back an hour right after a cycle: the next one is still due within
    # one interval, not an hour and an interval later.
    clock = Clock(10_000.0)
    scheduler = Scheduler(clock=clock, rng=random.Random(3), interval_s=60, jitter=0.1)
    for _ in range(3):
        clock.now = scheduler.next_due()
        scheduler.advance()
    slot = scheduler.slot
    clock.now -= 3600
    assert 60.0 <= scheduler.seconds_until_due() <= 66.0
    clock.now = scheduler.next_due()
    assert scheduler.is_due()
    scheduler.advance()
    assert scheduler.slot == slot + 1
    assert 60.0 <= scheduler.seconds_until_due() <= 66.0  # the grid goes on from the new time


def test_a_clock_stepped_back_while_a_cycle_ran_keeps_the_next_within_an_interval() -> None:
    clock = Clock(10_000.0)
    scheduler = Scheduler(clock=clock, rng=random.Random(), interval_s=60, jitter=0)
    assert scheduler.is_due()
    clock.now -= 86_400  # the cycle started before the step and ended after it
    assert scheduler.advance() == clock.now + 60


def test_a_clock_stepped_back_before_the_first_cycle_leaves_it_due() -> None:
    clock = Clock(10_000.0)
    scheduler = Scheduler(clock=clock, rng=random.Random(), interval_s=60, jitter=0)
    clock.now -= 3600
    assert scheduler.is_due()


def test_a_clock_stepped_forward_skips_to_the_next_grid_point() -> None:
    clock = Clock(0.0)
    scheduler = Scheduler(clock=clock, rng=random.Random(), interval_s=60, jitter=0)
    scheduler.advance()
    clock.now = 3_630.0
    assert scheduler.is_due()
    assert scheduler.advance() == 3_660.0
