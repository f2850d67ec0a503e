"""Hygiene: nothing secret or private in the output, and a well-kept contract file."""

from __future__ import annotations

import json

from chatcontract.contract import lint_document, read_document

from .context import CheckContext
from .outcome import Outcome


def check_redaction(ctx: CheckContext) -> Outcome:
    produced = json.dumps(
        {
            "exchanges": [e.to_dict() for e in ctx.exchanges],
            "results": ctx.shared.get("results_so_far", []),
        },
        default=str,
    )
    secret = ctx.target.secret
    leaks = []
    if secret and secret in produced:
        leaks.append("the API key")
    if ctx.marker in produced:
        leaks.append("prompt text (the run's marker)")
    expected = "neither the API key nor any prompt text in events, evidence or the report"
    evidence = {"bytes_scanned": len(produced), "exchanges": len(ctx.exchanges)}
    if leaks:
        return Outcome(
            status="fail",
            expected=expected,
            observed="found " + " and ".join(leaks),
            evidence=evidence,
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=f"clean: {len(ctx.exchanges)} exchanges, {len(produced)} bytes scanned",
        evidence=evidence,
    )


def check_contract_lint(ctx: CheckContext) -> Outcome:
    expected = "an owner, a review within 90 days, a reference URL, no secret in the file"
    path = ctx.target.contract_path
    if path is None:
        return Outcome(
            status="warn",
            expected=expected,
            observed=f"no contract file: the built-in {ctx.target.contract.provider} preset was "
            "used; write one with 'chatcontract init'",
        )
    findings = lint_document(read_document(path))
    if not findings:
        return Outcome(status="pass", expected=expected, observed="no findings")
    return Outcome(
        status="warn",
        expected=expected,
        observed="; ".join(f.message for f in findings),
        evidence={"findings": [str(f) for f in findings]},
    )
