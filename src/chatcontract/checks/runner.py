"""Runs the checks in order, reports progress, and builds the ``Report``."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence

from chatcontract._version import __version__
from chatcontract.errors import UsageError
from chatcontract.target import Target
from chatcontract.transport import ExchangeSink

from .context import CheckContext, SuiteOptions
from .model import CheckResult, Report, TargetInfo
from .suite import CHECKS, CheckSpec, Outcome, check_ids

__all__ = ["run_suite", "select_checks"]

Started = Callable[[CheckSpec], None]
Finished = Callable[[CheckResult], None]
Progress = Callable[[str, int, int], None]


def select_checks(only: Sequence[str] = ()) -> tuple[CheckSpec, ...]:
    """The checks to run: ``only`` (in run order) or every default one (opt-in ones excluded)."""
    unknown = [name for name in only if name not in check_ids()]
    if unknown:
        raise UsageError(
            f"unknown check {', '.join(map(repr, unknown))}; valid ids: {', '.join(check_ids())}"
        )
    if only:
        return tuple(spec for spec in CHECKS if spec.id in only)
    return tuple(spec for spec in CHECKS if not spec.opt_in)


def _skip(spec: CheckSpec, reason: str) -> CheckResult:
    return CheckResult(
        id=spec.id,
        title=spec.title,
        status="skip",
        required=spec.required,
        duration_ms=0.0,
        expected="-",
        observed=reason,
    )


def _skip_reason(spec: CheckSpec, target: Target, options: SuiteOptions) -> str | None:
    contract = target.contract
    if spec.negative and contract.environment == "production" and not options.allow_negative:
        return "skipped: the contract says environment: production (pass --allow-negative)"
    if spec.id in ("streaming", "stream_parity") and not contract.streaming.used:
        return "skipped: the contract says streaming is not used"
    return None


def run_suite(
    target: Target,
    options: SuiteOptions,
    *,
    on_started: Started | None = None,
    on_finished: Finished | None = None,
    on_progress: Progress | None = None,
    notes: Sequence[str] = (),
    sinks: Sequence[ExchangeSink] = (),
) -> Report:
    """Run the selected checks against ``target`` and return the report.

    ``sinks`` receive every Exchange the suite produces (e.g. to record observed shapes).
    """
    specs = select_checks(options.only)
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    ctx = CheckContext.open(target, options, progress=on_progress, sinks=sinks)
    results: list[CheckResult] = []
    all_notes = list(notes)
    if any(_skip_reason(s, target, options) for s in specs if s.negative):
        all_notes.append(
            "negative checks skipped: environment is production (pass --allow-negative to run them)"
        )
    try:
        for spec in specs:
            if on_started is not None:
                on_started(spec)
            reason = _skip_reason(spec, target, options)
            if reason is not None:
                result = _skip(spec, reason)
            else:
                ctx.shared["results_so_far"] = [r.to_dict() for r in results]
                began = time.perf_counter()
                outcome: Outcome = spec.fn(ctx)
                result = CheckResult(
                    id=spec.id,
                    title=spec.title,
                    status=outcome.status,
                    required=spec.required,
                    duration_ms=(time.perf_counter() - began) * 1000,
                    expected=outcome.expected,
                    observed=outcome.observed,
                    failure=outcome.failure,
                    evidence=outcome.evidence,
                    notes=outcome.notes,
                )
            results.append(result)
            if on_finished is not None:
                on_finished(result)
    finally:
        ctx.close()
    contract = target.contract
    return Report(
        version=__version__,
        contract_name=contract.name,
        provider=contract.provider,
        contract_path=target.contract_path,
        reviewed_on=contract.reviewed_on.isoformat() if contract.reviewed_on else None,
        owner=contract.owner,
        target=TargetInfo(
            base_url=target.base_url,
            simulated=target.simulated,
            model=target.model,
            scenario=target.scenario,
        ),
        started_at=started_at,
        duration_ms=(time.perf_counter() - started) * 1000,
        checks=tuple(results),
        notes=tuple(all_notes),
    )
