"""How long to wait before a retry: exponential backoff with jitter, and the server's own hint.

Both functions are pure: the random source and the wall clock are passed in.

    >>> compute_backoff(1, RetryPolicy(jitter=0), rng=lambda: 0.5)
    0.5
    >>> parse_retry_after({"retry-after-ms": "250"})
    0.25
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Callable, Mapping

from chatcontract.contract.model import RetryPolicy

__all__ = ["compute_backoff", "parse_duration", "parse_retry_after"]


def compute_backoff(attempt: int, policy: RetryPolicy, *, rng: Callable[[], float]) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 = the first attempt).

    ``backoff_initial_ms * backoff_multiplier ** (attempt - 1)``, capped at ``backoff_max_ms``,
    then spread by ``jitter``: a fraction ``j`` gives a uniform value in
    ``[base * (1 - j), base * (1 + j)]`` (``rng()`` is in ``[0, 1)``). The result is therefore
    always within ``[0, backoff_max_ms * (1 + jitter) / 1000]``.

    Raises ``ValueError`` for an attempt below 1.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    try:
        raw_ms = policy.backoff_initial_ms * policy.backoff_multiplier ** (attempt - 1)
    except OverflowError:
        raw_ms = math.inf
    base_ms = min(raw_ms, policy.backoff_max_ms)
    spread = 1.0 + policy.jitter * (2.0 * min(max(rng(), 0.0), 1.0) - 1.0)
    return max(0.0, base_ms * spread) / 1000.0


# "1s", "6ms", "1m30s", "0.5s", "2h": the x-ratelimit-reset-* duration format.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """Seconds in a duration such as ``1s``, ``6ms`` or ``1m30.5s``; ``None`` if malformed."""
    text = text.strip().lower()
    if not text:
        return None
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return total if position == len(text) else None


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _http_date(text: str, now: float | None) -> float | None:
    if now is None:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(0.0, moment.timestamp() - now)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


# (header, parser) in the order they are trusted: the most precise hint first.
_SOURCES: tuple[tuple[str, Callable[[str, float | None], float | None]], ...] = (
    ("retry-after-ms", lambda text, _now: None if (ms := _number(text)) is None else ms / 1000),
    (
        "retry-after",
        lambda text, now: _number(text) if _number(text) is not None else _http_date(text, now),
    ),
    # LiteLLM's proxy passes the provider's headers on renamed with this prefix (and sends no
    # retry-after of its own): the provider's wait still holds behind it.
    (
        "llm_provider-retry-after-ms",
        lambda text, _now: None if (ms := _number(text)) is None else ms / 1000,
    ),
    ("llm_provider-retry-after", lambda text, _now: _number(text)),
    ("x-ratelimit-reset-requests", lambda text, _now: parse_duration(text)),
)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, or ``None`` when it said nothing usable.

    Reads, first usable wins: ``retry-after-ms`` (milliseconds), ``retry-after`` (seconds, or
    an HTTP date — which needs ``now``, the wall clock in epoch seconds), the same two as
    LiteLLM renames them (``llm_provider-retry-after-ms``, ``llm_provider-retry-after``), and
    ``x-ratelimit-reset-requests`` (a duration like ``1s`` or ``20ms``). Header names are
    case-insensitive; negative or malformed values are ignored. The caller caps the value
    (``policy.retry.retry_after_cap_ms``).
    """
    for name, parse in _SOURCES:
        value = _header(headers, name)
        if value is None:
            continue
        seconds = parse(value, now)
        if seconds is not None:
            return seconds
    return None
