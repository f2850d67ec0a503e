"""The negative paths: bad auth, bad requests, an unknown model.

Each expects a named category and no retry; CometAPI's non-standard statuses are its
documented contract and say so in the report. Each sends on a connection of its own, and a
wrong answer is named in the clause's words ("an unknown model was accepted (HTTP 200)",
"a wrong key got HTTP 400 no_db_connection, not an auth error"). A wrong answer the
contract's valid request gets too (no answer in time, a redirect, an HTML page, a 500 for
everything) is the canary's defect: the check is skipped, saying so, rather than red again
(when the run has the canary: in a run without it, the check stays red with a note).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from chatcontract.exchange import Exchange
from chatcontract.failures import Failure, Kind
from chatcontract.wire import ErrorBody

from .clauses import Notes, clause_failure, is_usage_failure, usage_note
from .context import Answer, CheckContext
from .outcome import Outcome, evidence_of

#: How the report names each expected category in "…, not <words>".
_CATEGORY_WORDS = {
    "auth": "an auth error",
    "validation": "a validation error",
    "model": "a model error",
}

_STATUS_ONLY = re.compile(r"^\d{3}$")


def _said(status: int | None, error: ErrorBody | None) -> str:
    """What the server answered, in its own terms: ``HTTP 400 no_db_connection``.

    Gateways that rewrite ``error.code`` into the status (``"400"``) keep the meaning in
    ``error.type``; the literal ``"None"`` some send is no name at all.
    """
    names = [] if error is None else [error.code, error.type]
    word = next(
        (
            name
            for name in names
            if name and name != "None" and not _STATUS_ONLY.match(name) and name != str(status)
        ),
        None,
    )
    if status is None:
        return "no HTTP answer"
    return f"HTTP {status} {word}" if word else f"HTTP {status}"


def _expect_category(
    ctx: CheckContext,
    answer: Answer,
    *,
    check: str,
    subject: str,
    categories: Sequence[str],
    expected: str,
    documented: dict[tuple[int, str], str] | None = None,
) -> Outcome:
    """Judge a negative call: the server must reject ``subject`` in one of ``categories``.

    A 2xx answer is "accepted" whatever is wrong with its body (that is a note for the clause
    that owns it); any other answer is named in the server's terms. The failure reported is
    in the expected category, so its owner and first action are the clause's.
    """
    exchange = answer.exchange
    failure = exchange.failure
    response = exchange.response
    status = None if response is None else response.status
    evidence = evidence_of(exchange)
    notes = Notes()
    notes.add(usage_note(exchange, fields=ctx.target.contract.policy.usage_fields))
    if failure is not None:
        evidence["classification"] = f"{failure.kind}/{failure.category}/{failure.code}"
    accepted = status is not None and 200 <= status < 300
    if accepted and (failure is None or failure.kind != "api_error"):
        if failure is not None and not is_usage_failure(failure):
            notes.add(
                f"the answer also failed {failure.kind}/{failure.category}/{failure.code}: "
                f"{failure.message}"
            )
        observed = f"{subject} was accepted (HTTP {status})"
        return Outcome(
            status="fail",
            expected=expected,
            observed=observed,
            failure=_clause_failure(
                ctx, exchange, category=categories[0], code=f"{check}_accepted", message=observed
            ),
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    if failure is None:  # pragma: no cover - a non-2xx answer is always classified
        raise RuntimeError("a rejected call carries no classification")
    said = _said(status, answer.error)
    if status is not None and failure.status is None:
        # The head came, then reading the body failed (a stall, the deadline, a reset): the
        # caller gets that failure, not the status the head carried.
        said += " but not its body"
    if failure.category not in categories:
        control = _control(ctx).failure
        same = control is not None and (control.kind, control.category) == (
            failure.kind,
            failure.category,
        )
        if same and control is not None:
            evidence["control"] = f"{control.kind}/{control.category}/{control.code}"
        if same and not _canary_runs(ctx):
            # Nothing else in this run would turn red for it: the clause stays red, so a
            # run of negative checks alone never passes an endpoint that answers nothing.
            notes.add(
                f"the contract's valid request got the same ({evidence['control']}): the "
                "endpoint answers every request this way (run the canary to judge it)"
            )
        elif same:
            return Outcome(
                status="skip",
                expected=expected,
                observed=f"cannot judge: {subject} got {said} "
                f"({failure.kind}/{failure.category}/{failure.code}), and so did the "
                f"contract's valid request ({evidence['control']}): the endpoint answers "
                "every request this way, which the canary judges",
                evidence=evidence,
                notes=notes.as_tuple(),
            )
        observed = f"{subject} got {said}, not {_CATEGORY_WORDS.get(categories[0], categories[0])}"
        observed += (
            f" (classified {failure.kind}/{failure.category}/{failure.code}: {failure.message})"
        )
        return Outcome(
            status="fail",
            expected=expected,
            observed=observed,
            failure=_clause_failure(
                ctx,
                exchange,
                category=categories[0],
                code=f"{check}_misclassified",
                message=observed,
                kind=failure.kind,
            ),
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    if failure.retry != "none":
        observed = (
            f"{subject} got {said}, {_CATEGORY_WORDS.get(failure.category, failure.category)}, "
            f"but the decision is {failure.retry!r}: it would be retried"
        )
        return Outcome(
            status="fail",
            expected=expected,
            observed=observed,
            failure=failure,
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    observed = f"HTTP {failure.status} {failure.category}/{failure.code}, not retried"
    note = (documented or {}).get((failure.status or 0, failure.code))
    if note:
        observed += f" ({note})"
    return Outcome(
        status="pass",
        expected=expected,
        observed=observed,
        evidence=evidence,
        notes=notes.as_tuple(),
    )


#: Where a run keeps the control answer of the negative checks (one per run).
_CONTROL = "negative_control"


def _canary_runs(ctx: CheckContext) -> bool:
    """Whether this run has the canary, which names a defect every request gets."""
    only = ctx.options.only
    return not only or "canary" in only


def _control(ctx: CheckContext) -> Exchange:
    """The contract's own valid request, sent once per run on a connection of its own when a
    negative check got a wrong answer: a server that answers every request so (no answer in
    time, a redirect, an HTML page, a 500) breaks the canary's clause, not the negative
    one's, and one defect gives one red check. Sent by whichever negative check needs it
    first, so no verdict depends on the checks before it."""
    found: Exchange | None = ctx.shared.get(_CONTROL)
    if found is None:
        found = ctx.send_fresh().exchange
        ctx.shared[_CONTROL] = found
    return found


def check_missing_auth(ctx: CheckContext) -> Outcome:
    answer = ctx.send_fresh(headers=ctx.headers(auth=None))
    return _expect_category(
        ctx,
        answer,
        check="missing_auth",
        subject="a request without the key",
        categories=("auth",),
        expected="category auth (not a parser failure), not retried",
    )


def check_invalid_auth(ctx: CheckContext) -> Outcome:
    answer = ctx.send_fresh(headers=ctx.headers(auth="sk-chatcontract-invalid-key-0000000000"))
    return _expect_category(
        ctx,
        answer,
        check="invalid_auth",
        subject="a wrong key",
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
    answer = ctx.send_fresh(body)
    outcome = _expect_category(
        ctx,
        answer,
        check="malformed_request",
        subject=f"a request without {removed!r}",
        categories=("validation",),
        documented=_DOCUMENTED,
        expected=f"required field {removed!r} removed: category validation, not retried",
    )
    outcome.evidence["removed_field"] = removed
    return outcome


def check_malformed_json(ctx: CheckContext) -> Outcome:
    answer = ctx.send_fresh(content=b'{"model": "x", "messages": [')
    outcome = _expect_category(
        ctx,
        answer,
        check="malformed_json",
        subject="a body that is not JSON",
        categories=("validation", "auth"),
        expected="a body that is not JSON: category validation (or auth, if the gateway checks "
        "the key first), not retried",
    )
    failure = answer.exchange.failure
    if outcome.status == "pass" and failure is not None and failure.category == "auth":
        return replace(outcome, observed=outcome.observed + " (the gateway checks auth first)")
    return outcome


def check_unsupported_model(ctx: CheckContext) -> Outcome:
    answer = ctx.send_fresh(ctx.fixture(model="chatcontract-no-such-model-0"))
    return _expect_category(
        ctx,
        answer,
        check="unsupported_model",
        subject="an unknown model",
        categories=("model",),
        documented=_DOCUMENTED,
        expected="category model, not retried",
    )


def _clause_failure(
    ctx: CheckContext,
    exchange: Exchange,
    *,
    category: str,
    code: str,
    message: str,
    kind: Kind = "semantic",
) -> Failure:
    """:func:`clause_failure` for this target's contract, its key redacted from the message."""
    return clause_failure(
        ctx.target.contract,
        exchange,
        category=category,
        code=code,
        message=message,
        kind=kind,
        secrets=(ctx.target.secret,),
    )
