"""``GatewayState``: the per-process state an admin app reads (readiness from the breakers,
the kill switch, the counters), without a call upstream."""

from __future__ import annotations

import pytest
from gateway_helpers import contract_for, env_for

from chatcontract.gateway import GatewayState


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def state_and_clock():
    clock = Clock()
    contract = contract_for("http://127.0.0.1:9/v1", backup_url="http://127.0.0.1:10/v1")
    return GatewayState(contract, environ=env_for("k1", "k2"), clock=clock), clock


def _open(state: GatewayState, route: str) -> None:
    for _ in range(state.contract.policy.breaker.failures):
        state.breakers.record_failure(route, "upstream")


def test_a_fresh_gateway_is_ready_with_every_breaker_closed(state_and_clock):
    state, _ = state_and_clock
    assert state.ready()
    assert [(h.route, h.state) for h in state.route_health()] == [
        ("primary", "closed"),
        ("backup", "closed"),
    ]


def test_one_route_open_leaves_the_gateway_ready(state_and_clock):
    state, _ = state_and_clock
    _open(state, "primary")
    assert state.ready()
    assert state.route_health()[0].state == "open"


def test_every_route_open_is_not_ready_until_a_cool_down_passes(state_and_clock):
    state, clock = state_and_clock
    _open(state, "primary")
    _open(state, "backup")
    assert not state.ready()
    clock.now += state.breakers.cooldown_s
    assert state.ready()


@pytest.mark.parametrize(
    ("flag", "variable", "on"),
    [(False, "", False), (True, "", True), (False, "1", True), (False, "off", False)],
    ids=["off", "admin-flag", "contract-variable", "variable-off-word"],
)
def test_the_kill_switch_is_the_admin_flag_or_the_contracts_variable(flag, variable, on):
    env = env_for("k1", CHATCONTRACT_KILL_SWITCH=variable)
    state = GatewayState(contract_for("http://127.0.0.1:9/v1"), environ=env)
    state.kill_switch = flag
    assert state.kill_switch_on() is on


def test_the_counters_start_at_zero_and_no_key_is_required_without_keys(state_and_clock):
    state, _ = state_and_clock
    assert (state.in_flight, state.served, state.requires_key) == (0, 0, False)


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_a_shape_sample_rate_outside_0_to_1_is_refused(rate):
    with pytest.raises(ValueError, match="shape_sample_rate"):
        GatewayState(
            contract_for("http://127.0.0.1:9/v1"), environ=env_for("k"), shape_sample_rate=rate
        )
