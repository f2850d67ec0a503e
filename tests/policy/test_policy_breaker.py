"""The circuit breaker: opens after K counted failures, cools down, one trial, never refuses."""

import dataclasses

import pytest

from chatcontract.contract import BreakerPolicy
from chatcontract.policy import BreakerChange, Breakers, RouteHealth

ROUTES = ("primary", "fallback")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(failures=3, cooldown_ms=10_000, enabled=True):
    clock = Clock()
    policy = BreakerPolicy(enabled=enabled, failures=failures, cooldown_ms=cooldown_ms)
    return Breakers(policy, clock=clock), clock


def fail(breakers, times, route="primary", category="upstream"):
    return [breakers.record_failure(route, category) for _ in range(times)]


def test_a_new_route_is_closed_and_keeps_its_order():
    breakers, _ = make()
    assert breakers.order(ROUTES) == ROUTES
    assert breakers.health("primary") == RouteHealth(route="primary", state="closed", failures=0)


def test_the_breaker_opens_on_the_kth_counted_failure_in_a_row_and_says_so():
    breakers, _ = make(failures=3)
    changes = fail(breakers, 3)
    assert changes[:2] == [None, None]
    opened = changes[2]
    assert (opened.route, opened.before, opened.after, opened.failures) == (
        "primary",
        "closed",
        "open",
        3,
    )
    assert "3 attempts in a row failed (upstream)" in opened.reason
    assert breakers.health("primary").state == "open"


def test_an_open_route_is_tried_last_not_removed():
    breakers, _ = make(failures=1)
    fail(breakers, 1)
    assert breakers.order(ROUTES) == ("fallback", "primary")


def test_a_success_resets_the_count_of_failures_in_a_row():
    breakers, _ = make(failures=3)
    fail(breakers, 2)
    assert breakers.record_success("primary") is None
    fail(breakers, 2)
    assert breakers.health("primary").state == "closed"
    assert breakers.health("primary").failures == 2


@pytest.mark.parametrize("category", ["validation", "auth", "content", "context_length"])
def test_failures_that_are_the_requests_fault_do_not_count(category):
    breakers, _ = make(failures=1)
    assert breakers.record_failure("primary", category) is None
    assert breakers.health("primary").failures == 0


def test_the_counted_categories_are_configurable():
    breakers = Breakers(BreakerPolicy(failures=1), clock=Clock(), counted=("contract",))
    assert breakers.record_failure("primary", "upstream") is None
    assert breakers.record_failure("primary", "contract").after == "open"


def test_after_the_cooldown_exactly_one_trial_call_is_let_through():
    breakers, clock = make(failures=1, cooldown_ms=10_000)
    fail(breakers, 1)
    clock.now += 9.999
    assert breakers.order(ROUTES) == ("fallback", "primary")
    clock.now += 0.001
    assert breakers.order(ROUTES) == ROUTES  # the trial
    assert breakers.health("primary").state == "half_open"
    assert breakers.order(ROUTES) == ("fallback", "primary")  # only one trial at a time


def test_a_successful_trial_closes_the_breaker():
    breakers, clock = make(failures=1)
    fail(breakers, 1)
    clock.now += 10
    breakers.order(ROUTES)
    change = breakers.record_success("primary")
    assert (change.before, change.after, change.failures) == ("half_open", "closed", 0)
    assert breakers.order(ROUTES) == ROUTES
    assert breakers.health("primary").failures == 0


def test_a_successful_trial_closes_on_probation_the_next_failure_reopens_it():
    breakers, clock = make(failures=3)
    fail(breakers, 3)
    clock.now += 10
    breakers.order(ROUTES)  # the trial
    change = breakers.record_success("primary")
    assert (change.before, change.after, change.failures) == ("half_open", "closed", 2)
    assert breakers.order(ROUTES) == ROUTES  # traffic returns at once
    reopened = breakers.record_failure("primary", "upstream")  # a flap: one failure, not three
    assert (reopened.before, reopened.after) == ("closed", "open")
    assert breakers.order(ROUTES) == ("fallback", "primary")


def test_a_second_success_after_a_trial_clears_the_probation():
    breakers, clock = make(failures=3)
    fail(breakers, 3)
    clock.now += 10
    breakers.order(ROUTES)
    breakers.record_success("primary")
    assert breakers.record_success("primary") is None
    assert breakers.health("primary") == RouteHealth(route="primary", state="closed", failures=0)
    assert fail(breakers, 2) == [None, None]  # K failures in a row again before it opens


@pytest.mark.parametrize(
    ("failures", "cooldown_ms", "outage_s"),
    [(3, 10_000, 60.0), (1, 5_000, 30.0), (4, 20_000, 61.0)],
    ids=["preset", "k1", "k4"],
)
def test_a_flapping_route_costs_k_attempts_then_one_trial_per_cooldown(
    failures, cooldown_ms, outage_s
):
    """Calls every second through an outage where every 5th attempt on the route gets through:
    the route gets K attempts, then per cool-down one trial (plus one call after a trial that
    got through), never the attempt per call a closed breaker would let through."""
    breakers, clock = make(failures=failures, cooldown_ms=cooldown_ms)
    start = clock.now
    tried = got_through = 0
    while clock.now - start < outage_s:
        if breakers.order(ROUTES)[0] == "primary":
            tried += 1
            if tried % 5 == 0:
                got_through += 1
                breakers.record_success("primary")
            else:
                breakers.record_failure("primary", "upstream")
        clock.now += 1.0
    cooldowns = int(outage_s // (cooldown_ms / 1000)) + 1
    assert tried <= failures + cooldowns + got_through
    assert tried < outage_s / 3  # far from an attempt per call


def test_a_failed_trial_opens_the_breaker_for_another_cooldown():
    breakers, clock = make(failures=3)
    fail(breakers, 3)
    clock.now += 10
    breakers.order(ROUTES)
    change = breakers.record_failure("primary", "timeout")
    assert (change.before, change.after) == ("half_open", "open")
    assert "the trial call failed" in change.reason
    assert breakers.health("primary").open_until == pytest.approx(clock.now + 10)
    clock.now += 9
    assert breakers.order(ROUTES) == ("fallback", "primary")


def test_a_trial_that_never_reports_lets_another_through_after_a_cooldown():
    breakers, clock = make(failures=1)
    fail(breakers, 1)
    clock.now += 10
    breakers.order(ROUTES)
    clock.now += 9.5
    assert breakers.order(ROUTES)[0] == "fallback"
    clock.now += 0.5
    assert breakers.order(ROUTES)[0] == "primary"


def test_when_every_route_is_open_the_least_recently_failed_goes_first():
    breakers, clock = make(failures=1)
    fail(breakers, 1, route="fallback")
    clock.now += 1
    fail(breakers, 1, route="primary")
    assert breakers.order(ROUTES) == ("fallback", "primary")
    assert len(breakers.order(ROUTES)) == len(ROUTES)  # nothing is refused


def test_a_success_on_an_open_route_tried_as_last_resort_closes_it():
    breakers, _ = make(failures=1)
    fail(breakers, 1)
    change = breakers.record_success("primary")
    assert (change.before, change.after) == ("open", "closed")


def test_a_disabled_breaker_never_reorders_or_reports():
    breakers, _ = make(failures=1, enabled=False)
    assert fail(breakers, 5) == [None] * 5
    assert breakers.order(ROUTES) == ROUTES
    assert breakers.record_success("primary") is None
    assert breakers.health("primary").state == "closed"


def test_the_snapshot_reports_each_state_as_a_gauge_value():
    breakers, clock = make(failures=1)
    fail(breakers, 1)
    health = {h.route: h for h in breakers.snapshot(ROUTES)}
    assert (health["primary"].state_value, health["fallback"].state_value) == (1, 0)
    assert health["primary"].last_failure_at == clock.now
    clock.now += 10
    breakers.order(ROUTES)
    assert breakers.health("primary").state_value == 2
    assert breakers.health("primary").open_until is None


def test_the_repr_names_the_routes_that_are_not_closed():
    breakers, _ = make(failures=1)
    fail(breakers, 1)
    assert "primary" in repr(breakers)


def test_a_route_below_the_threshold_keeps_its_place():
    breakers, _ = make(failures=3)
    fail(breakers, 2)
    assert breakers.order(ROUTES) == ROUTES
    assert breakers.health("primary").state == "closed"


def test_a_fractional_cooldown_is_kept_exactly():
    breakers, clock = make(failures=1, cooldown_ms=1_500)
    assert breakers.cooldown_s == 1.5
    fail(breakers, 1)
    clock.now += 1.2
    assert breakers.order(ROUTES)[0] == "fallback"
    assert "1.5 s" in breakers.record_failure("fallback", "network").reason


def test_a_trial_is_let_through_long_after_the_cooldown_too():
    breakers, clock = make(failures=1)
    fail(breakers, 1)
    clock.now += 25
    assert breakers.order(ROUTES)[0] == "primary"
    clock.now += 35  # the trial never reported, long ago
    assert breakers.order(ROUTES)[0] == "primary"


def test_breaker_values_are_frozen_and_keyword_only():
    health = RouteHealth(route="primary", state="open", failures=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        health.failures = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        RouteHealth("primary", "open", 3)  # type: ignore[misc]
    change = BreakerChange(route="p", before="closed", after="open", failures=3, reason="r")
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.after = "closed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        BreakerChange("p", "closed", "open", 3, "r")  # type: ignore[misc]
    assert not hasattr(health, "__dict__") and not hasattr(change, "__dict__")


def test_breakers_are_idle_until_a_counted_failure_and_again_after_a_success():
    breakers, _ = make(failures=3)
    assert breakers.idle
    breakers.record_failure("primary", "validation")  # not counted: nothing on record
    assert breakers.idle
    fail(breakers, 1)
    assert not breakers.idle  # one failure counted, the breaker still closed
    breakers.record_success("primary")
    assert breakers.idle


def test_an_open_or_half_open_breaker_is_not_idle():
    breakers, clock = make(failures=1, cooldown_ms=1_000)
    fail(breakers, 1)
    assert not breakers.idle
    clock.now += 1.0
    assert breakers.order(ROUTES) == ROUTES  # the trial: half-open
    assert not breakers.idle


def test_disabled_breakers_are_always_idle():
    breakers, _ = make(failures=1, enabled=False)
    fail(breakers, 3)
    assert breakers.idle
