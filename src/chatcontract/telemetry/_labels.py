"""Bounded label values: a metric label never takes free text from the outside world.

A model name, a route or a reason reaches a label only if it is one the contract names or
one of the first ``limit`` distinct well-formed values seen; anything else becomes ``other``
(and a missing value ``unknown``), so a caller sending arbitrary model names cannot blow up the
number of series.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from chatcontract.contract import Contract

__all__ = ["OTHER", "UNKNOWN", "BoundedValues", "contract_models", "contract_routes"]

OTHER = "other"
UNKNOWN = "unknown"

# Model ids look like gpt-4.1-nano, claude-3-5-sonnet-20241022, deepseek/deepseek-r1,
# accounts/fireworks/models/x: letters, digits and a few separators, bounded in length.
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")


class BoundedValues:
    """Maps raw values to label values, admitting at most ``limit`` unknown distinct values.

    Example::

        models = BoundedValues(known=("gpt-4.1-nano",), limit=50)
        models("gpt-4.1-nano")   # 'gpt-4.1-nano'
        models(None)             # 'unknown'
        models("x" * 500)        # 'other'
    """

    __slots__ = ("_admitted", "_limit", "_lock", "_seen")

    def __init__(self, *, known: Iterable[str] = (), limit: int = 50) -> None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        self._seen = {value for value in known if value and _WELL_FORMED.fullmatch(value)}
        self._limit = limit
        self._admitted = 0
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        if not value:
            return UNKNOWN
        if value in self._seen:  # the hot path: a set lookup, no lock
            return value
        if not _WELL_FORMED.fullmatch(value):
            return OTHER
        with self._lock:
            if value in self._seen:
                return value
            if self._admitted >= self._limit:
                return OTHER
            self._admitted += 1
            self._seen.add(value)
        return value


def contract_models(contract: Contract | None) -> tuple[str, ...]:
    """The model names a contract configures: the primary, the fallbacks', the priced ones."""
    if contract is None:
        return ()
    names = [contract.model]
    names += [route.model for route in contract.fallbacks if route.model]
    names += list(contract.policy.prices)
    return tuple(dict.fromkeys(names))


def contract_routes(contract: Contract | None) -> tuple[str, ...]:
    """The route names a contract configures: ``primary`` and each fallback's name."""
    routes = ["primary"]
    if contract is not None:
        routes += [route.name for route in contract.fallbacks]
    return tuple(routes)
