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
    Breakers,
    BreakerState,
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
from .recovery import (
    TOLERATED_CODES,
    UNRECOVERABLE,
    Recovery,
    RecoveryAction,
    continuation_request,
    is_complete,
    recover_stream,
    tolerated,
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
    "TOLERATED_CODES",
    "UNRECOVERABLE",
    "Action",
    "BreakerChange",
    "BreakerState",
    "Breakers",
    "BudgetGuard",
    "Deadline",
    "Decision",
    "Recovery",
    "RecoveryAction",
    "RefusalReason",
    "RouteHealth",
    "Rule",
    "Stop",
    "compute_backoff",
    "context_route",
    "continuation_request",
    "decide",
    "effective_reserve",
    "estimate_prompt_tokens",
    "is_complete",
    "kill_switch_active",
    "parse_duration",
    "parse_retry_after",
    "recover_stream",
    "rule_for",
    "tolerated",
]
