"""A call's route order: with every breaker idle the routes are taken as given, and that is
the order the breakers give; once a breaker holds a failure they order them."""

from __future__ import annotations

import random
import time

import pytest
from client_helpers import contract_for, env_for

from chatcontract.client._core import ClientCore
from chatcontract.client._routes import Route

KEY = "cc-key-000111"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _core(clock: Clock | None = None) -> ClientCore:
    contract = contract_for(
        "http://127.0.0.1:1/v1", model_fallback=True, fallback_url="http://127.0.0.1:2/v1"
    )
    return ClientCore(
        contract,
        model=None,
        environ=env_for(KEY, "cc-key-fallback"),
        telemetry_sinks=(),
        clock=clock or time.monotonic,
        rng=random.random,
        wall_clock=time.time,
    )


def _slow_order(core: ClientCore, routes: tuple[Route, ...]) -> tuple[Route, ...]:
    """What the breakers give, asked every time (the general way)."""
    by_name = {route.name: route for route in routes}
    return tuple(by_name[name] for name in core.breakers.order(list(by_name)))


def test_idle_breakers_keep_every_route_in_the_contract_order() -> None:
    core = _core()
    assert core.breakers.idle
    assert core.ordered_routes() is core.routes
    assert core.ordered_routes() == _slow_order(core, core.routes)


@pytest.mark.parametrize(
    "pick",
    [(0,), (2, 0), (1, 2, 0)],
    ids=["one", "two-reordered", "three-reordered"],
)
def test_idle_breakers_keep_a_call_s_own_routes_in_its_order(pick: tuple[int, ...]) -> None:
    core = _core()
    routes = tuple(core.routes[i] for i in pick)
    assert core.ordered_routes(list(routes)) == routes == _slow_order(core, routes)


def test_a_route_named_twice_is_kept_once_as_the_breakers_order_it() -> None:
    core = _core()
    primary, _model, backup = core.routes
    assert core.ordered_routes([primary, backup, primary]) == (primary, backup)


def test_a_breaker_holding_failures_orders_the_routes() -> None:
    clock = Clock()
    core = _core(clock)
    primary, model, backup = core.routes
    for _ in range(core.contract.policy.breaker.failures):
        core.breakers.record_failure("primary", "upstream")
    assert not core.breakers.idle
    assert core.ordered_routes() == (model, backup, primary)  # the open route goes last
    assert core.ordered_routes([primary, backup]) == (backup, primary)
