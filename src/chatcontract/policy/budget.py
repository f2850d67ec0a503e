"""Local guards checked before sending: token and money caps, and the kill switch.

``BudgetGuard`` refuses a call whose worst case breaks ``policy.caps`` — before anything goes
on the wire — and adds the actual cost of each successful call to a rolling 24-hour total, and
of each failed attempt the provider may bill: its reported usage, else an estimate of the
prompt (and of what was generated) when the request reached the provider and got an answer
whose category does not say it was refused before any work (``UNBILLED_CATEGORIES``).
Prices come from ``policy.prices``; a model without prices skips the cost caps (its calls
cannot be priced, so only ``max_tokens_per_call`` applies).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol

from chatcontract.contract.model import CostCaps, Policy, Prices
from chatcontract.wire import Usage

__all__ = [
    "DAY_S",
    "FALSE_WORDS",
    "UNBILLED_CATEGORIES",
    "BudgetGuard",
    "MemorySpendStore",
    "RefusalReason",
    "SpendStore",
    "estimate_prompt_tokens",
    "kill_switch_active",
]

#: Why a guard refused to send (the ``reason`` of a ``BudgetRefusal`` event).
RefusalReason = Literal["max_tokens_cap", "call_cost_cap", "daily_cost_cap", "kill_switch"]

#: The rolling window of ``max_cost_per_day_usd``.
DAY_S = 86_400.0

#: Failure categories a provider answers before doing any work on the prompt (refused key,
#: bad request, unknown model or path, throttled, out of quota, prompt too long, policy
#: refusal, a local guard): a failed attempt in one of them is charged only the usage its
#: error reports, if any. Any other answered failure (5xx, a broken or cut 2xx, an in-band
#: error mid-stream) may have been billed and is charged an estimate.
UNBILLED_CATEGORIES = frozenset(
    {
        "auth",
        "validation",
        "model",
        "endpoint",
        "rate_limit",
        "quota",
        "context_length",
        "content_policy",
        "budget",
    }
)

# The chat format's cost per message (role, separators) and per request (reply priming),
# as OpenAI's cookbook counts them; the text itself is ~4 characters per token.
_PER_MESSAGE_TOKENS = 4
_PER_REQUEST_TOKENS = 3
_CHARS_PER_TOKEN = 4


def _text_chars(value: Any) -> int:
    """Characters of text inside a message value, without keeping any of it."""
    if isinstance(value, str):
        return len(value)
    if type(value) is dict or isinstance(value, Mapping):
        total = 0
        for key, item in value.items():
            if key != "type":
                # A string (a message's role and content) counted here: no call for it.
                total += len(item) if type(item) is str else _text_chars(item)
        return total
    if isinstance(value, list | tuple):
        return sum(_text_chars(item) for item in value)
    return 0


def estimate_prompt_tokens(messages: Iterable[Any]) -> int:
    """A cheap upper-leaning estimate of a request's prompt tokens.

    About one token per four characters of every text value in each message (content parts,
    names, tool-call arguments), plus the chat format's per-message overhead. Only lengths
    are read; no text is stored.
    """
    total = _PER_REQUEST_TOKENS
    for message in messages:
        total += _PER_MESSAGE_TOKENS + math.ceil(_text_chars(message) / _CHARS_PER_TOKEN)
    return total


class SpendStore(Protocol):
    """Where a ``BudgetGuard`` keeps its spend: the in-process default is
    ``MemorySpendStore``; a store shared between processes (the gateway's ``--workers``)
    makes the caps hold for all of them together. Must be safe to share between threads."""

    def add(self, at: float, cost: float) -> None:
        """Record ``cost`` USD spent at ``at`` (the guard's clock, in seconds)."""
        ...

    def total_since(self, horizon: float) -> float:
        """USD recorded after ``horizon`` (older records may be dropped)."""
        ...


class MemorySpendStore:
    """The default ``SpendStore``: this process's spend over the horizon, in one-second buckets.

    Memory is bounded (at most one bucket per second of the horizon, however many calls a
    long-lived process makes) and a check reads a running total, not a day of records. A
    charge is kept in the bucket of the next whole second, so it counts for at least the
    horizon and at most one second longer.
    """

    def __init__(self) -> None:
        self._buckets: deque[list[float]] = deque()  # [second, cost], oldest first
        self._total = 0.0
        self._lock = threading.Lock()

    def add(self, at: float, cost: float) -> None:
        second = float(math.ceil(at))
        with self._lock:
            buckets = self._buckets
            if buckets and buckets[-1][0] >= second:  # same second (or a clock step back)
                buckets[-1][1] += cost
            else:
                buckets.append([second, cost])
            self._total += cost

    def total_since(self, horizon: float) -> float:
        with self._lock:
            buckets = self._buckets
            while buckets and buckets[0][0] <= horizon:
                self._total -= buckets.popleft()[1]
            if not buckets:
                self._total = 0.0  # no rounding left over from what expired
            return max(self._total, 0.0)


class BudgetGuard:
    """Token and money caps for calls, with a rolling 24-hour spend.

    Args:
        caps: ``policy.caps``.
        prices: ``policy.prices`` (USD per million tokens, by model).
        clock: a monotonic clock in seconds (default ``time.monotonic``).
        store: where the spend is kept (default: a ``MemorySpendStore``, this guard's own).

    Example::

        guard = BudgetGuard(contract.policy.caps, contract.policy.prices)
        guard.check("gpt-4.1-nano", prompt_tokens=120, max_tokens=256)  # None: allowed
        guard.record("gpt-4.1-nano", completion.usage)                  # actual cost added

    Safe to share between threads.
    """

    def __init__(
        self,
        caps: CostCaps,
        prices: Mapping[str, Prices],
        *,
        clock: Callable[[], float] = time.monotonic,
        store: SpendStore | None = None,
    ) -> None:
        self.caps = caps
        self.prices = prices
        self._clock = clock
        self.store: SpendStore = store if store is not None else MemorySpendStore()

    def worst_case_usd(
        self, model: str, prompt_tokens: int, max_tokens: int | None
    ) -> float | None:
        """The most a call can cost: the prompt plus ``max_tokens`` (or the per-call token cap
        when the request sets none); ``None`` for a model without prices."""
        prices = self.prices.get(model)
        if prices is None:
            return None
        completion = max_tokens if max_tokens is not None else self.caps.max_tokens_per_call
        return prices.cost(prompt_tokens, completion or 0)

    def check(self, model: str, prompt_tokens: int, max_tokens: int | None) -> RefusalReason | None:
        """``None`` when the call may be sent, else the cap it would break.

        ``max_tokens_cap``: ``max_tokens`` above ``max_tokens_per_call``; ``call_cost_cap``:
        the worst case above ``max_cost_per_call_usd``; ``daily_cost_cap``: the last 24 hours'
        spend plus the worst case above ``max_cost_per_day_usd``.
        """
        caps = self.caps
        if (
            caps.max_tokens_per_call is not None
            and max_tokens is not None
            and max_tokens > caps.max_tokens_per_call
        ):
            return "max_tokens_cap"
        worst = self.worst_case_usd(model, prompt_tokens, max_tokens)
        if worst is None:
            return None
        if caps.max_cost_per_call_usd is not None and worst > caps.max_cost_per_call_usd:
            return "call_cost_cap"
        if caps.max_cost_per_day_usd is not None and self.spent_today() + worst > (
            caps.max_cost_per_day_usd
        ):
            return "daily_cost_cap"
        return None

    def record(self, model: str, usage: Usage | None) -> float | None:
        """Add a finished call's actual cost; returns it (``None``: no prices or no usage)."""
        prices = self.prices.get(model)
        if prices is None or usage is None:
            return None
        cost = prices.cost(usage.prompt_tokens or 0, usage.completion_tokens or 0)
        self.store.add(self._clock(), cost)
        return cost

    def record_failed(
        self,
        model: str,
        *,
        usage: Usage | None,
        answered: bool,
        category: str,
        prompt_tokens: int,
        completion_chars: int = 0,
    ) -> float | None:
        """Charge a failed attempt the provider may bill; returns the amount (``None``: not
        charged, or no prices for ``model``).

        Args:
            usage: the usage the failed response reported (charged as is when present).
            answered: the request was sent whole and an HTTP response came back.
            category: the failure category (``UNBILLED_CATEGORIES`` are not estimated).
            prompt_tokens: the request's estimated prompt tokens.
            completion_chars: characters generated before the failure (a cut stream).
        """
        prices = self.prices.get(model)
        if prices is None:
            return None
        if usage is not None:
            prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
        elif answered and category not in UNBILLED_CATEGORIES:
            prompt, completion = prompt_tokens, math.ceil(completion_chars / _CHARS_PER_TOKEN)
        else:
            return None
        cost = prices.cost(max(prompt, 0), max(completion, 0))
        if cost <= 0:
            return None
        self.store.add(self._clock(), cost)
        return cost

    def spent_today(self) -> float:
        """USD recorded in the last 24 hours."""
        return self.store.total_since(self._clock() - DAY_S)


#: Values of the kill-switch variable that mean "off".
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


def kill_switch_active(policy: Policy, environ: Mapping[str, str]) -> bool:
    """True when ``policy.kill_switch_env`` names a variable set to anything but an "off"
    word (empty, ``0``, ``false``, ``no``, ``off``; case-insensitive)."""
    name = policy.kill_switch_env
    if name is None:
        return False
    return environ.get(name, "").strip().lower() not in FALSE_WORDS
