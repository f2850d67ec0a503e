"""Breakers.is_open in each state, probation for any threshold, keyword-only options."""

import pytest

from chatcontract.contract import BreakerPolicy
from chatcontract.policy import Breakers, RouteHealth


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(failures: int) -> tuple[Breakers, Clock]:
    clock = Clock()
    return Breakers(BreakerPolicy(failures=failures, cooldown_ms=10_000), clock=clock), clock


def test_is_open_is_true_only_while_the_breaker_is_open():
    breakers, clock = make(failures=2)
    assert breakers.is_open("primary") is False  # never seen
    breakers.record_failure("primary", "upstream")
    assert breakers.is_open("primary") is False  # closed, one failure counted
    breakers.record_failure("primary", "upstream")
    assert breakers.is_open("primary") is True
    clock.now += 10
    assert breakers.is_open("primary") is True  # past the cool-down, no trial taken yet
    breakers.order(["primary"])  # the trial is let through: half-open
    assert breakers.health("primary").state == "half_open"
    assert breakers.is_open("primary") is False
    breakers.record_success("primary")  # closed on probation
    assert breakers.health("primary").state == "closed"
    assert breakers.is_open("primary") is False
    assert breakers.is_open("other") is False


@pytest.mark.parametrize("failures", [2, 3, 4, 5], ids=lambda k: f"k{k}")
def test_a_closed_trial_keeps_one_failure_short_of_any_threshold(failures):
    breakers, clock = make(failures=failures)
    for _ in range(failures):
        breakers.record_failure("primary", "upstream")
    clock.now += 10
    breakers.order(["primary"])
    change = breakers.record_success("primary")
    assert change is not None and change.failures == failures - 1
    assert breakers.health("primary").failures == failures - 1
    reopened = breakers.record_failure("primary", "upstream")
    assert reopened is not None and (reopened.before, reopened.after) == ("closed", "open")


def test_the_clock_and_the_counted_categories_are_keyword_only():
    with pytest.raises(TypeError):
        Breakers(BreakerPolicy(), Clock())  # type: ignore[misc]


def test_a_threshold_of_one_closed_by_a_trial_forgets_the_route():
    breakers, clock = make(failures=1)
    breakers.record_failure("primary", "upstream")
    clock.now += 10
    breakers.order(["primary"])
    breakers.record_success("primary")
    assert breakers.health("primary") == RouteHealth(route="primary", state="closed", failures=0)
