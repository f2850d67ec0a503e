"""Which clause a failure belongs to, and the notes a check writes for the clauses it does not own.

One defect gives one red check: each check fails only for its own clause. Usage (present,
consistent, within ``max_tokens``) is ``usage_consistency``'s clause, judged over every 2xx
answer of the run; content and shape are the canary's and the stream's; a 429 on a repeated
call is a note once ``retry-after`` was honoured. Everything else a check sees on the way is a
note naming the check that counts it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from chatcontract.contract import Contract
from chatcontract.exchange import Exchange
from chatcontract.failures import Failure, Kind, decision_for, make_failure

__all__ = [
    "USAGE_CHECK",
    "Notes",
    "answered",
    "clause_failure",
    "is_usage_failure",
    "judged_for_usage",
    "other_clause_note",
    "rate_limit_note",
    "usage_note",
    "usage_problems",
    "usage_was_asked",
]

#: The check that owns the usage clause.
USAGE_CHECK = "usage_consistency"

_MORE = re.compile(r"\(\+\d+ more\)$")


def usage_problems(usage: Any, *, fields: Sequence[str], max_tokens: int | None) -> list[str]:
    """What is wrong with one usage object, against the contract's usage fields."""
    if usage is None:
        return ["usage missing"]
    problems = [f"{name} missing" for name in fields if getattr(usage, name) is None]
    prompt, completion, total = usage.prompt_tokens, usage.completion_tokens, usage.total_tokens
    problems += [
        f"{name} negative"
        for name, value in (
            ("prompt_tokens", prompt),
            ("completion_tokens", completion),
            ("total_tokens", total),
        )
        if value is not None and value < 0
    ]
    if prompt is not None and total is not None and total < prompt:
        problems.append(f"total_tokens {total} < prompt_tokens {prompt}")
    if None not in (prompt, completion, total) and total != prompt + completion:
        problems.append(f"total_tokens {total} != {prompt} + {completion}")
    if max_tokens is not None and completion is not None and completion > max_tokens:
        problems.append(f"completion_tokens {completion} > max_tokens {max_tokens}")
    return problems


def is_usage_failure(failure: Failure | None) -> bool:
    """True when the failure is the usage clause's alone (inconsistent or missing usage)."""
    if failure is None:
        return False
    if failure.category == "usage":
        return True
    # A body whose only violation is a missing usage path (the parser names the first one and
    # counts the rest: "(+2 more)" means something else is missing too).
    return failure.code == "missing_usage" and not _MORE.search(failure.message)


def answered(exchange: Exchange) -> bool:
    """A 2xx that is a parsed answer: no failure, or only a usage or semantic one."""
    response, failure = exchange.response, exchange.failure
    if response is None or not 200 <= response.status < 300:
        return False
    return failure is None or failure.kind == "semantic" or is_usage_failure(failure)


def usage_was_asked(exchange: Exchange) -> bool:
    """Whether the request asked for usage: always without a stream, else ``include_usage``."""
    return not exchange.request.stream or exchange.request.include_usage


def judged_for_usage(exchange: Exchange) -> bool:
    """Whether ``usage_consistency`` judges this Exchange: every 2xx with usage, and every
    2xx answer without it that asked for it (whatever check sent it, failed or not)."""
    response = exchange.response
    if response is None or not 200 <= response.status < 300:
        return False
    if response.usage is not None:
        return True
    return answered(exchange) and usage_was_asked(exchange)


def usage_note(exchange: Exchange, *, fields: Sequence[str]) -> str | None:
    """A note for usage problems in a 2xx answer (``None`` when usage holds or is not owed)."""
    if not judged_for_usage(exchange) or exchange.response is None:
        return None
    usage = exchange.response.usage
    problems = usage_problems(usage, fields=fields, max_tokens=exchange.request.max_tokens)
    if not problems:
        return None
    what = "usage missing" if problems == ["usage missing"] else f"usage: {', '.join(problems)}"
    return f"{what} ({USAGE_CHECK} counts it)"


def other_clause_note(exchange: Exchange, *, owner: str = "canary") -> str | None:
    """A note for a 2xx answer that failed another clause than usage (an empty content...)."""
    failure = exchange.failure
    if failure is None or is_usage_failure(failure) or not answered(exchange):
        return None
    return f"{failure.category}: {failure.message} ({owner}'s clause)"


def rate_limit_note(limited: Iterable[Exchange], waited_s: float) -> str | None:
    """A note for the 429s a patient call met before its answer."""
    count = sum(1 for _ in limited)
    if not count:
        return None
    return f"{count} x HTTP 429 rate limited; waited {waited_s:.1f} s as retry-after asked"


class Notes:
    """Notes of one check, deduplicated and counted, in first-seen order."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def add(self, note: str | None) -> None:
        if note:
            self._counts[note] += 1

    def extend(self, notes: Iterable[str | None]) -> None:
        for note in notes:
            self.add(note)

    def __bool__(self) -> bool:
        return bool(self._counts)

    def as_tuple(self) -> tuple[str, ...]:
        return tuple(
            note if count == 1 else f"{note} (x{count})" for note, count in self._counts.items()
        )


def clause_failure(
    contract: Contract,
    exchange: Exchange,
    *,
    category: str,
    code: str,
    message: str,
    kind: Kind = "semantic",
    secrets: tuple[str, ...] = (),
) -> Failure:
    """A breach of a clause seen in ``exchange``, as a ``Failure`` in ``category``.

    Owner and first action come from the taxonomy, the retry decision from the contract's
    retryable / non-retryable sets; the message is redacted of ``secrets``. Used by the
    checks and by the probes, so both classify a breach the same way.
    """
    table = contract.errors
    return make_failure(
        kind=kind,
        category=category,
        code=code,
        message=message,
        status=None if exchange.response is None else exchange.response.status,
        request_id=exchange.request_id,
        decision=decision_for(
            category, retryable=table.retryable, non_retryable=table.non_retryable
        ),
        secrets=secrets,
    )
