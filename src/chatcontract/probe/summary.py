"""``/api/summary``: the contract's health over a window, computed from the probe store.

The structure is a public contract (the dashboard reads it): :class:`Summary` and the nested
TypedDicts below spell it out, and :data:`SUMMARY_KEYS` lists the keys of every object.
Counts are aggregated in SQL in one pass over the window (grouped by hour and response model);
they count calls (a retry and a fallback call are calls). ``totals`` and each timeline bucket's
``success``/``failure`` count probes instead: each probe once, by its verdict (the primary
route's final attempt, as ``probe_success`` says), from a second grouping by execution.
Latency percentiles come from a third, index range of successful primary-route
``non_streaming`` runs.
Nothing is cached between requests. Only the shown target's rows count: simulated runs, other
endpoints and rows written before targets were recorded are left out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import TypedDict

from chatcontract.contract import Contract
from chatcontract.failures import KINDS
from chatcontract.identity import TargetIdentity, clean_base_url

from .cost import cost_paused, utc_day
from .metrics import review_due_on
from .records import PROBE_KINDS, PROMPT_SIZES
from .store import ProbeStore

__all__ = [
    "DEFAULT_WINDOW_HOURS",
    "MAX_WINDOW_HOURS",
    "SUMMARY_KEYS",
    "ContractSummary",
    "CostSummary",
    "CountsSummary",
    "DriftItem",
    "FailuresByKind",
    "LastValidation",
    "LatencySummary",
    "ProbeStatus",
    "RatesSummary",
    "Summary",
    "TargetSummary",
    "TimelineBucket",
    "Totals",
    "build_summary",
    "percentile",
    "summary_target",
    "target_identity",
]

DEFAULT_WINDOW_HOURS = 24
MAX_WINDOW_HOURS = 24 * 366
DRIFT_EVENTS_SHOWN = 50


class ContractSummary(TypedDict):
    name: str
    provider: str
    owner: str
    reviewed_on: str | None
    review_due_on: str | None
    days_until_review: int | None


class TargetSummary(TypedDict):
    base_url: str
    simulated: bool
    model: str


class Totals(TypedDict):
    probes: int
    success: int
    failure: int


class FailuresByKind(TypedDict):
    transport: int
    http: int
    api_error: int
    parser: int
    semantic: int
    budget: int


class RatesSummary(TypedDict):
    schema_valid: float | None
    client_timeout: float | None
    fallback_activation: float | None
    retry_success: float | None
    usage_available: float | None


class CountsSummary(TypedDict):
    missing_required_paths: int
    parse_failures: int
    auth_failures: int
    rate_limited: int
    quota: int


class LatencySummary(TypedDict):
    p50_ms: float
    p95_ms: float
    samples: int


class TimelineBucket(TypedDict):
    t: str
    success: int
    failure: int
    by_kind: FailuresByKind
    p50_ms: float | None
    p95_ms: float | None
    schema_valid_rate: float | None


class ProbeStatus(TypedDict):
    last_run_at: str | None
    last_success_at: str | None
    last_ok: bool | None


class LastValidation(TypedDict):
    at: str
    verdict: str
    passed: int
    failed: int
    warned: int
    skipped: int


class DriftItem(TypedDict):
    at: str
    kind: str
    detail: str


class CostSummary(TypedDict):
    spent_today_usd: float
    daily_cap_usd: float
    paused: bool


class Summary(TypedDict):
    generated_at: str
    window_hours: int
    contract: ContractSummary
    target: TargetSummary
    totals: Totals
    failures_by_kind: FailuresByKind
    rates: RatesSummary
    counts: CountsSummary
    response_models: dict[str, int]
    latency_by_prompt_size: dict[str, LatencySummary]
    timeline: list[TimelineBucket]
    probes: dict[str, ProbeStatus]
    last_validation: LastValidation | None
    drift_events: list[DriftItem]
    cost: CostSummary


#: The keys of every fixed-key object in the summary, in order (``""`` is the top level).
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "": tuple(Summary.__annotations__),
    "contract": tuple(ContractSummary.__annotations__),
    "target": tuple(TargetSummary.__annotations__),
    "totals": tuple(Totals.__annotations__),
    "failures_by_kind": tuple(FailuresByKind.__annotations__),
    "rates": tuple(RatesSummary.__annotations__),
    "counts": tuple(CountsSummary.__annotations__),
    "latency_by_prompt_size.*": tuple(LatencySummary.__annotations__),
    "timeline[]": tuple(TimelineBucket.__annotations__),
    "probes.*": tuple(ProbeStatus.__annotations__),
    "last_validation": tuple(LastValidation.__annotations__),
    "drift_events[]": tuple(DriftItem.__annotations__),
    "cost": tuple(CostSummary.__annotations__),
}

# Codes of parser failures that mean "a path the application reads is missing".
_MISSING_PATH_CODES = ("missing_field", "missing_choices")


def _when(column: str) -> str:
    return f"SUM(CASE WHEN {column} THEN 1 ELSE 0 END)"


# One pass over the window: everything countable per call (a retry and a fallback call are
# calls of their own), grouped by hour and response model.
_COUNTS: tuple[tuple[str, str], ...] = (
    ("calls", "COUNT(*)"),
    *((f"kind_{kind}", _when(f"ok = 0 AND kind = '{kind}'")) for kind in KINDS),
    ("schema_valid", "SUM(schema_valid)"),
    ("schema_checked", "COUNT(schema_valid)"),
    ("client_timeouts", _when("ok = 0 AND kind = 'transport' AND category = 'timeout'")),
    ("fallbacks", _when("route <> 'primary'")),
    ("first_attempts", _when("route = 'primary' AND attempt = 1 AND probe <> 'invalid_request'")),
    ("retries", _when("route = 'primary' AND attempt > 1")),
    ("retries_ok", _when("route = 'primary' AND attempt > 1 AND ok = 1")),
    ("usage_expected", "SUM(usage_expected)"),
    ("usage_present", _when("usage_expected = 1 AND usage_present = 1")),
    (
        "missing_required_paths",
        _when(
            "ok = 0 AND kind = 'parser' AND code IN ("
            + ", ".join(f"'{code}'" for code in _MISSING_PATH_CODES)
            + ")"
        ),
    ),
    ("parse_failures", _when("ok = 0 AND kind = 'parser'")),
    ("auth_failures", _when("ok = 0 AND category = 'auth'")),
    ("rate_limited", _when("ok = 0 AND category = 'rate_limit'")),
    ("quota", _when("ok = 0 AND category = 'quota'")),
)
_COUNT_NAMES = tuple(name for name, _ in _COUNTS)
_AGGREGATES = ", ".join(expression for _, expression in _COUNTS)
# Built from the constants above, never from input.
_HOURLY_SQL = f"SELECT hour_bucket, response_model, {_AGGREGATES} FROM probe_runs WHERE started_at >= ? AND target = ? GROUP BY hour_bucket, response_model"  # noqa: E501, S608
# Each probe's verdict, once per probe (an execution: its first attempt, a retry, a fallback
# call), in the hour of its first attempt. The verdict is the primary route's final attempt, as
# ``probe_success`` says: a retry is only sent after a failed attempt, so the probe passed when
# any primary attempt passed; a fallback that answered does not make it pass. A probe whose
# first attempt fell before the window is left out (its retry alone is not a probe).
_VERDICT_SQL = (
    "SELECT first_hour, COUNT(*), SUM(passed) FROM ("
    "SELECT MIN(CASE WHEN route = 'primary' AND attempt = 1 THEN hour_bucket END) AS first_hour, "
    "MAX(CASE WHEN route = 'primary' THEN ok ELSE 0 END) AS passed "
    "FROM probe_runs WHERE started_at >= ? AND target = ? GROUP BY execution_id"
    ") AS probes WHERE first_hour IS NOT NULL GROUP BY first_hour"
)
_LATENCY_SQL = (
    "SELECT hour_bucket, prompt_size, total_ms FROM probe_runs "
    "WHERE probe = 'non_streaming' AND ok = 1 AND started_at >= ? AND target = ? "
    "AND route = 'primary' AND total_ms IS NOT NULL"
)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    text = dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z"


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[rank]


def _by_kind(counts: dict[str, int]) -> FailuresByKind:
    return FailuresByKind(
        transport=counts["kind_transport"],
        http=counts["kind_http"],
        api_error=counts["kind_api_error"],
        parser=counts["kind_parser"],
        semantic=counts["kind_semantic"],
        budget=counts["kind_budget"],
    )


def _contract_summary(contract: Contract, now: float) -> ContractSummary:
    due = review_due_on(contract)
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    return ContractSummary(
        name=contract.name,
        provider=contract.provider,
        owner=contract.owner,
        reviewed_on=None if contract.reviewed_on is None else contract.reviewed_on.isoformat(),
        review_due_on=None if due is None else due.isoformat(),
        days_until_review=None if due is None else (due - today).days,
    )


def build_summary(
    store: ProbeStore,
    *,
    contract: Contract,
    target: TargetSummary,
    now: float,
    hours: int = DEFAULT_WINDOW_HOURS,
    unrecorded_spend_usd: float = 0.0,
) -> Summary:
    """The summary of the ``hours`` before ``now`` (epoch seconds).

    ``unrecorded_spend_usd``: today's spend the store could not record (disk full), which the
    running probe still counts towards its daily cap (``Prober.unrecorded_spend``).
    """
    if not 1 <= hours <= MAX_WINDOW_HOURS:
        raise ValueError(f"hours must be between 1 and {MAX_WINDOW_HOURS}, got {hours}")
    since = now - hours * 3600
    key = target_identity(target).key
    hourly: dict[int, dict[str, int]] = {}
    totals = dict.fromkeys(_COUNT_NAMES, 0)
    models: dict[str, int] = {}
    for row in store.fetchall(_HOURLY_SQL, (since, key)):
        bucket, model = int(row[0]), row[1]
        values = [int(value or 0) for value in row[2:]]
        counts = hourly.setdefault(bucket, dict.fromkeys(_COUNT_NAMES, 0))
        for name, value in zip(_COUNT_NAMES, values, strict=True):
            counts[name] += value
            totals[name] += value
        if model is not None:
            models[model] = models.get(model, 0) + values[0]

    verdicts: dict[int, tuple[int, int]] = {}
    for bucket, probes, passed in store.fetchall(_VERDICT_SQL, (since, key)):
        verdicts[int(bucket)] = (int(probes), int(passed or 0))
    probes_total = sum(probes for probes, _ in verdicts.values())
    passed_total = sum(passed for _, passed in verdicts.values())

    by_size: dict[str, list[float]] = {}
    by_hour: dict[int, list[float]] = {}
    for bucket, size, total_ms in store.fetchall(_LATENCY_SQL, (since, key)):
        by_size.setdefault(size or "short", []).append(float(total_ms))
        if size in (None, "short"):
            by_hour.setdefault(int(bucket), []).append(float(total_ms))

    timeline: list[TimelineBucket] = []
    for bucket in sorted(hourly.keys() | verdicts.keys()):
        counts = hourly.get(bucket) or dict.fromkeys(_COUNT_NAMES, 0)
        latencies = by_hour.get(bucket)
        probes, passed = verdicts.get(bucket, (0, 0))
        timeline.append(
            TimelineBucket(
                t=_iso(bucket * 3600.0) or "",
                success=passed,
                failure=probes - passed,
                by_kind=_by_kind(counts),
                p50_ms=round(percentile(latencies, 0.5), 1) if latencies else None,
                p95_ms=round(percentile(latencies, 0.95), 1) if latencies else None,
                schema_valid_rate=_rate(counts["schema_valid"], counts["schema_checked"]),
            )
        )

    latency: dict[str, LatencySummary] = {
        size: LatencySummary(
            p50_ms=round(percentile(samples, 0.5), 1),
            p95_ms=round(percentile(samples, 0.95), 1),
            samples=len(samples),
        )
        for size in (*PROMPT_SIZES, *sorted(set(by_size) - set(PROMPT_SIZES)))
        if (samples := by_size.get(size))
    }
    cap = contract.policy.probe.daily_cost_cap_usd
    spent = store.spent_on(utc_day(now), target=key) + unrecorded_spend_usd
    validation = store.last_validation(target=key)
    return Summary(
        generated_at=_iso(now) or "",
        window_hours=hours,
        contract=_contract_summary(contract, now),
        target=target,
        totals=Totals(
            probes=probes_total, success=passed_total, failure=probes_total - passed_total
        ),
        failures_by_kind=_by_kind(totals),
        rates=RatesSummary(
            schema_valid=_rate(totals["schema_valid"], totals["schema_checked"]),
            client_timeout=_rate(totals["client_timeouts"], totals["calls"]),
            fallback_activation=_rate(totals["fallbacks"], totals["first_attempts"]),
            retry_success=_rate(totals["retries_ok"], totals["retries"]),
            usage_available=_rate(totals["usage_present"], totals["usage_expected"]),
        ),
        counts=CountsSummary(
            missing_required_paths=totals["missing_required_paths"],
            parse_failures=totals["parse_failures"],
            auth_failures=totals["auth_failures"],
            rate_limited=totals["rate_limited"],
            quota=totals["quota"],
        ),
        response_models=dict(sorted(models.items(), key=lambda item: (-item[1], item[0]))),
        latency_by_prompt_size=latency,
        timeline=timeline,
        probes={
            kind: ProbeStatus(
                last_run_at=_iso(state.last_run_at),
                last_success_at=_iso(state.last_success_at),
                last_ok=state.last_ok,
            )
            for kind, state in store.probe_states(PROBE_KINDS, target=key, since=since).items()
        },
        last_validation=None
        if validation is None
        else LastValidation(
            at=_iso(validation.at) or "",
            verdict=validation.verdict,
            passed=validation.passed,
            failed=validation.failed,
            warned=validation.warned,
            skipped=validation.skipped,
        ),
        drift_events=[
            DriftItem(at=_iso(event.at) or "", kind=event.kind, detail=event.detail)
            for event in store.drift_events(limit=DRIFT_EVENTS_SHOWN, target=key)
        ],
        cost=CostSummary(
            spent_today_usd=round(spent, 6), daily_cap_usd=cap, paused=cost_paused(spent, cap)
        ),
    )


def summary_target(base_url: str, *, simulated: bool, model: str) -> TargetSummary:
    """The ``target`` object (the URL without query or credentials)."""
    return TargetSummary(base_url=clean_base_url(base_url), simulated=simulated, model=model)


def target_identity(target: TargetSummary) -> TargetIdentity:
    """The stored identity of the target a summary shows (whose rows it counts)."""
    if target["simulated"]:
        return TargetIdentity.simulated_for(target["model"])
    return TargetIdentity.real(target["base_url"], target["model"])
