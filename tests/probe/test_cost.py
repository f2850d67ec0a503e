"""Probe cost: usage times prices, the worst case when usage is missing, the UTC day, the cap."""

from __future__ import annotations

import datetime as dt

import pytest

from chatcontract.contract import Prices
from chatcontract.exchange import Exchange, RequestFacts, ResponseFacts, Timings
from chatcontract.probe import cost_paused, probe_cost, utc_day
from chatcontract.probe.cost import estimate_prompt_tokens, next_utc_midnight
from chatcontract.wire import Usage

PRICES = {"gpt-4.1-nano": Prices(input_per_million=2.0, output_per_million=8.0)}


def exchange(
    *, status: int | None = 200, usage: Usage | None = None, model: str = "gpt-4.1-nano"
) -> Exchange:
    response = None if status is None else ResponseFacts(status=status, usage=usage)
    return Exchange(
        request=RequestFacts(method="POST", url="http://x/v1/chat/completions", model=model),
        response=response,
        timings=Timings(),
        started_at=0.0,
    )


def test_cost_comes_from_usage_and_the_model_prices() -> None:
    usage = Usage(prompt_tokens=1_000, completion_tokens=500, total_tokens=1_500)
    cost = probe_cost(
        exchange(usage=usage), prices=PRICES, max_tokens=64, prompt_tokens_estimate=9_999
    )
    assert cost.usd == pytest.approx((1_000 * 2.0 + 500 * 8.0) / 1_000_000)
    assert not cost.estimated


@pytest.mark.parametrize("status", [200, None], ids=["2xx-without-usage", "no-response"])
def test_missing_usage_charges_the_worst_case(status: int | None) -> None:
    cost = probe_cost(
        exchange(status=status), prices=PRICES, max_tokens=64, prompt_tokens_estimate=300
    )
    assert cost.estimated
    assert cost.usd == pytest.approx((300 * 2.0 + 64 * 8.0) / 1_000_000)


def test_an_error_response_costs_nothing() -> None:
    cost = probe_cost(
        exchange(status=429), prices=PRICES, max_tokens=64, prompt_tokens_estimate=300
    )
    assert (cost.usd, cost.estimated) == (0.0, False)


def test_a_model_without_prices_costs_nothing() -> None:
    cost = probe_cost(
        exchange(model="unpriced"), prices=PRICES, max_tokens=64, prompt_tokens_estimate=300
    )
    assert cost.usd == 0.0


def test_the_prompt_estimate_over_counts() -> None:
    assert estimate_prompt_tokens(300) == 100
    assert estimate_prompt_tokens(0) == 1


def test_days_are_utc() -> None:
    late = dt.datetime(2026, 3, 1, 23, 59, 59, tzinfo=dt.UTC).timestamp()
    assert utc_day(late) == "2026-03-01"
    assert utc_day(late + 1) == "2026-03-02"
    assert next_utc_midnight(late) == late + 1


@pytest.mark.parametrize(
    ("spent", "cap", "paused"),
    [
        (0.0, 0.5, False),
        (0.49, 0.5, False),
        (0.5, 0.5, True),
        (0.7, 0.5, True),
        (0.0, 0.0, False),
        (0.0001, 0.0, True),
    ],
    ids=[
        "nothing-spent",
        "below",
        "reached",
        "above",
        "zero-cap-nothing-spent",
        "zero-cap-any-spend",
    ],
)
def test_the_cap_pauses_once_reached(spent: float, cap: float, paused: bool) -> None:
    assert cost_paused(spent, cap) is paused
