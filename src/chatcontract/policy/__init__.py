"""Pure policy decisions: backoff, retry-after, the single deadline, retry/fallback, budget.

No I/O anywhere in this package: clocks and random sources are passed in, so every decision
can be tested alone and shared by the sync and async clients.
"""

from __future__ import annotations

from .backoff import compute_backoff, parse_duration, parse_retry_after
from .breaker import (
    BREAKER_STATES,
    COUNTED_CATEGORIES,
    BreakerChange,
    BreakerState,
    Breakers,
    RouteHealth,
)
from .budget import (
    DAY_S,
    BudgetGuard,
    RefusalReason,
    estimate_prompt_tokens,
    kill_switch_active,
)
from .deadline import MAX_RESERVE_SHARE, MIN_ATTEMPT_S, Deadline, effective_reserve
from .decide import (
    ALL_ATTEMPTS,
    RULES,
    SILENT_CODES,
    Action,
    Decision,
    Rule,
    Stop,
    context_route,
    decide,
    rule_for,
)

__all__ = [
    "ALL_ATTEMPTS",
    "BREAKER_STATES",
    "COUNTED_CATEGORIES",
    "DAY_S",
    "MAX_RESERVE_SHARE",
    "MIN_ATTEMPT_S",
    "RULES",
    "SILENT_CODES",
    "Action",
    "BreakerChange",
    "BreakerState",
    "Breakers",
    "BudgetGuard",
    "Deadline",
    "Decision",
    "RefusalReason",
    "RouteHealth",
    "Rule",
    "Stop",
    "compute_backoff",
    "context_route",
    "decide",
    "effective_reserve",
    "estimate_prompt_tokens",
    "kill_switch_active",
    "parse_duration",
    "parse_retry_after",
    "rule_for",
]
