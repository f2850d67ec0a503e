"""The negative paths: bad auth, bad requests, an unknown model.

Each expects a named category and no retry; CometAPI's non-standard statuses are its
documented contract and say so in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .context import CheckContext
from .outcome import Outcome, describe, evidence_of


def _expect_category(
    ctx: CheckContext,
    exchange: Any,
    *,
    categories: Sequence[str],
    expected: str,
    documented: dict[tuple[int, str], str] | None = None,
) -> Outcome:
    failure = exchange.failure
    evidence = evidence_of(exchange)
    if failure is None:
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"HTTP {exchange.response.status}: the request was accepted",
            evidence=evidence,
        )
    evidence["classification"] = f"{failure.kind}/{failure.category}/{failure.code}"
    if failure.category not in categories:
        return Outcome(
            status="fail",
            expected=expected,
            observed=describe(exchange),
            failure=failure,
            evidence=evidence,
        )
    if failure.retry != "none":
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"{describe(exchange)}; but the decision is {failure.retry!r}",
            failure=failure,
            evidence=evidence,
        )
    observed = f"HTTP {failure.status} {failure.category}/{failure.code}, not retried"
    note = (documented or {}).get((failure.status or 0, failure.code))
    if note:
        observed += f" ({note})"
    return Outcome(status="pass", expected=expected, observed=observed, evidence=evidence)


def check_missing_auth(ctx: CheckContext) -> Outcome:
    exchange = ctx.send(headers=ctx.headers(auth=None))
    return _expect_category(
        ctx,
        exchange,
        categories=("auth",),
        expected="category auth (not a parser failure), not retried",
    )


def check_invalid_auth(ctx: CheckContext) -> Outcome:
    exchange = ctx.send(headers=ctx.headers(auth="sk-chatcontract-invalid-key-0000000000"))
    return _expect_category(
        ctx,
        exchange,
        categories=("auth",),
        expected="category auth (not a parser failure), not retried",
    )


_DOCUMENTED = {
    (500, "invalid_request"): "CometAPI answers a missing field with 500 invalid_request: "
    "the documented contract",
    (503, "model_not_found"): "CometAPI answers an unknown model with 503 model_not_found: "
    "the documented contract",
}


def check_malformed_request(ctx: CheckContext) -> Outcome:
    body = ctx.fixture()
    removed = next(
        (name for name in ctx.target.contract.request.required if name != "model"), "messages"
    )
    body.pop(removed, None)
    exchange = ctx.send(body)
    outcome = _expect_category(
        ctx,
        exchange,
        categories=("validation",),
        documented=_DOCUMENTED,
        expected=f"required field {removed!r} removed: category validation, not retried",
    )
    outcome.evidence["removed_field"] = removed
    return outcome


def check_malformed_json(ctx: CheckContext) -> Outcome:
    exchange = ctx.send(content=b'{"model": "x", "messages": [')
    outcome = _expect_category(
        ctx,
        exchange,
        categories=("validation", "auth"),
        expected="a body that is not JSON: category validation (or auth, if the gateway checks "
        "the key first), not retried",
    )
    failure = exchange.failure
    if outcome.status == "pass" and failure is not None and failure.category == "auth":
        return Outcome(
            status="pass",
            expected=outcome.expected,
            observed=outcome.observed + " (the gateway checks auth before the body)",
            evidence=outcome.evidence,
        )
    return outcome


def check_unsupported_model(ctx: CheckContext) -> Outcome:
    exchange = ctx.send(ctx.fixture(model="chatcontract-no-such-model-0"))
    return _expect_category(
        ctx,
        exchange,
        categories=("model",),
        documented=_DOCUMENTED,
        expected="category model, not retried",
    )
