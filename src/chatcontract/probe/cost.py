"""What probes cost, and the daily cap that pauses them.

A probe's cost is its usage times the contract's prices for the model. When usage is missing
from a response that may have been billed (a 2xx, or no response at all), the worst case is
charged instead: the request's token cap as completion tokens and a generous estimate of the
prompt. Error responses (4xx/5xx) cost nothing. Costs are summed per UTC day; once the day's
total reaches ``policy.probe.daily_cost_cap_usd`` probing pauses until the next UTC midnight.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass

from chatcontract.contract import Prices
from chatcontract.exchange import Exchange

__all__ = [
    "CostEstimate",
    "CostStatus",
    "cost_paused",
    "estimate_prompt_tokens",
    "next_utc_midnight",
    "prices_for",
    "probe_cost",
    "utc_day",
]

#: Characters per token assumed for the worst-case prompt estimate (low, so it over-counts).
_CHARS_PER_TOKEN = 3


def utc_day(timestamp: float) -> str:
    """The UTC date of an epoch timestamp, ``YYYY-MM-DD``."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date().isoformat()


def next_utc_midnight(timestamp: float) -> float:
    """The epoch timestamp of the next UTC midnight after ``timestamp``."""
    day = dt.datetime.fromtimestamp(timestamp, dt.UTC).date() + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def estimate_prompt_tokens(payload_chars: int) -> int:
    """An upper estimate of a request's prompt tokens from its JSON size."""
    return max(1, math.ceil(payload_chars / _CHARS_PER_TOKEN))


def prices_for(prices: Mapping[str, Prices], *models: str | None) -> Prices | None:
    """The first model's prices found (requested model first, then the response's)."""
    for model in models:
        if model and model in prices:
            return prices[model]
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CostEstimate:
    """USD for one call; ``estimated`` when usage was missing and the worst case was used."""

    usd: float
    estimated: bool = False


def probe_cost(
    exchange: Exchange,
    *,
    prices: Mapping[str, Prices],
    max_tokens: int,
    prompt_tokens_estimate: int,
) -> CostEstimate:
    """The cost of one probe call (0 when the model has no price in the contract)."""
    response = exchange.response
    price = prices_for(prices, exchange.request.model, None if response is None else response.model)
    if price is None:
        return CostEstimate(usd=0.0)
    usage = None if response is None else response.usage
    counted = usage is not None and (
        usage.prompt_tokens is not None or usage.completion_tokens is not None
    )
    if usage is not None and counted:
        return CostEstimate(usd=price.cost(usage.prompt_tokens or 0, usage.completion_tokens or 0))
    if response is not None and not 200 <= response.status < 300:
        return CostEstimate(usd=0.0)
    return CostEstimate(usd=price.cost(prompt_tokens_estimate, max_tokens), estimated=True)


def cost_paused(spent_usd: float, cap_usd: float) -> bool:
    """Whether probing pauses: the day's spend reached the cap (a zero cap pauses on any spend)."""
    return spent_usd >= cap_usd and (cap_usd > 0 or spent_usd > 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class CostStatus:
    """Today's spend against the cap."""

    day: str
    spent_usd: float
    cap_usd: float

    @property
    def paused(self) -> bool:
        return cost_paused(self.spent_usd, self.cap_usd)
