"""One probe cycle: run the probes, follow the resilience path, store, measure, compare.

``Prober.run_cycle(now)`` is the whole step: no sleeping, the clock injected, so tests drive
it with a fake clock. Per probe kind:

1. send the probe request (:mod:`.probes`) and judge it;
2. on a failure decided ``retry``, retry once on the same route after the wait the
   application's client would take (``chatcontract.policy.decide``: the server's
   ``retry-after`` / ``retry-after-ms`` up to ``policy.retry.retry_after_cap_ms``, else the
   backoff), if it fits in ``total_ms``, which covers the retries (a hint above the cap, or an
   attempt that used up ``total_ms``, goes to the fallback instead); a failure decided
   ``fallback`` (or a retry that failed again) probes the contract's first fallback route
   once. Each call is one stored row; the retry success and the fallback activation are
   recorded (rows with ``attempt`` 2 / a fallback ``route``) and sent to telemetry;
3. store each call with its cost, feed the llm_* metrics, compare primary-route responses
   with the accepted baseline and store each new difference once.

The probe's verdict (``probe_success``) is the primary route's final attempt: a fallback that
answered is resilience working, but the contract with the primary is still broken.
Before every call the day's spend on this target is checked against the contract's daily cap;
once reached, the rest of the day is skipped (``probe_paused{reason="daily_cost_cap"}`` = 1).

Every stored row carries the target's identity (``simulated model=…`` or the base URL without
credentials and the model). A write the store refuses (disk full) does not stop the cycle: the
probe's verdict and metrics still count, its cost still counts towards the daily cap (kept in
memory for the day), the store remembers the error for ``/healthz`` and ``probe_store_*``, and
the next write that succeeds clears it.
"""

from __future__ import annotations

import dataclasses
import random
import sqlite3
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ParamSpec, TypeVar

import httpx2
import msgspec

from chatcontract._log import get_logger
from chatcontract.checks.context import CheckContext, SuiteOptions
from chatcontract.drift import Baseline, compare, observe, read_validate_record
from chatcontract.errors import ConfigError
from chatcontract.failures import Failure
from chatcontract.identity import identity_of
from chatcontract.policy import Deadline, decide, parse_retry_after
from chatcontract.target import Target
from chatcontract.telemetry.events import FallbackActivated, RetryDecided, RetrySucceeded
from chatcontract.transport import Exchange

from .cost import CostStatus, probe_cost, utc_day
from .metrics import ProbeMetrics
from .probes import ProbeRequest, build_request, judge, kinds_for
from .records import DriftEvent, ProbeKind, ProbeRun
from .runner import CycleResult, ProbeOutcome, ProberOptions, fallback_target, validation_run
from .schedule import Clock
from .store import ProbeStore

__all__ = ["Prober"]

logger = get_logger("chatcontract.probe")

_P = ParamSpec("_P")
_R = TypeVar("_R")

_DAY_S = 86_400.0
_MAX_REMEMBERED_KEYS = 10_000


class Prober:
    """Runs probe cycles against a target, recording into a store and metrics.

    Example::

        with open_target(simulate=True) as target, ProbeStore.open(path) as store:
            prober = Prober(target=target, store=store, clock=time.time,
                            metrics=ProbeMetrics(CollectorRegistry(), contract=target.contract))
            try:
                result = prober.run_cycle()
            finally:
                prober.close()
    """

    def __init__(
        self,
        *,
        target: Target,
        store: ProbeStore,
        metrics: ProbeMetrics,
        clock: Clock,
        options: ProberOptions | None = None,
        baseline: Baseline | None = None,
        inner: httpx2.BaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.target = target
        self.contract = target.contract
        self.store = store
        self.metrics = metrics
        self.options = options or ProberOptions()
        self._clock = clock
        self._inner = inner
        self._environ = environ
        self._rng = rng
        self.identity = identity_of(target)
        self.kinds = kinds_for(self.contract, self.options.kinds)
        if not self.kinds:
            raise ConfigError(
                f"no probe to run: {', '.join(self.options.kinds or ())} not allowed by the "
                "contract (invalid_request needs environment: staging; streaming probes need "
                "streaming.used, usage_capture also streaming.include_usage)"
            )
        self._ctx = CheckContext.open(target, SuiteOptions(), inner=inner)
        self._fallback: tuple[str, CheckContext] | None = None
        self._fallback_resolved = False
        self._cycles = 0
        self._last_prune: float | None = None
        self._baseline = baseline
        self._baseline_stamp: tuple[float, int] | None = None
        self._validate_stamp: tuple[float, int] | None = None
        self._drift_keys: set[str] = store.drift_keys()
        # Spend of runs the store refused (disk full), by UTC day: the daily cap still counts
        # it. Only the latest day is kept; those runs are never stored later, so never twice.
        self._unrecorded_spend: dict[str, float] = {}
        metrics.restore(store, target=self.identity.key)

    @property
    def baseline(self) -> Baseline | None:
        return self._baseline

    def close(self) -> None:
        self._ctx.close()
        if self._fallback is not None:
            self._fallback[1].close()

    # -- the cycle ----------------------------------------------------------------------------

    def unrecorded_spend(self, day: str) -> float:
        """USD spent on ``day`` (UTC, ``YYYY-MM-DD``) by probes the store refused to record."""
        return self._unrecorded_spend.get(day, 0.0)

    def cost_status(self, now: float | None = None) -> CostStatus:
        day = utc_day(self._clock() if now is None else now)
        return CostStatus(
            day=day,
            spent_usd=self.store.spent_on(day, target=self.identity.key)
            + self.unrecorded_spend(day),
            cap_usd=self.contract.policy.probe.daily_cost_cap_usd,
        )

    def plan(self, index: int) -> list[tuple[ProbeKind, bool]]:
        """``(kind, large)`` pairs of cycle ``index``."""
        plan: list[tuple[ProbeKind, bool]] = []
        for kind in self.kinds:
            plan.append((kind, False))
            every = self.options.large_every
            if kind == "non_streaming" and every and index % every == 0:
                plan.append((kind, True))
        return plan

    def run_cycle(
        self, now: float | None = None, *, cancel: threading.Event | None = None
    ) -> CycleResult:
        """Run one cycle of probes (stops early when ``cancel`` is set or the cap is reached)."""
        at = self._clock() if now is None else now
        index = self._cycles
        self._cycles += 1
        self.maintain(at)
        outcomes: list[ProbeOutcome] = []
        skipped: list[ProbeKind] = []
        drift: list[DriftEvent] = []
        for kind, large in self.plan(index):
            if (cancel is not None and cancel.is_set()) or self._paused():
                skipped.append(kind)
                continue
            outcome, events = self._run_probe(kind, large=large, cancel=cancel)
            outcomes.append(outcome)
            drift.extend(events)
        status = self.cost_status()
        self.metrics.set_paused("daily_cost_cap", status.paused)
        self.metrics.refresh(self.store)
        return CycleResult(
            at=at,
            index=index,
            outcomes=tuple(outcomes),
            skipped=tuple(skipped),
            paused=status.paused,
            drift=tuple(drift),
            cost=status,
        )

    def _paused(self) -> bool:
        paused = self.cost_status().paused
        self.metrics.set_paused("daily_cost_cap", paused)
        return paused

    def _run_probe(
        self, kind: ProbeKind, *, large: bool, cancel: threading.Event | None = None
    ) -> tuple[ProbeOutcome, list[DriftEvent]]:
        execution = uuid.uuid4().hex
        request = build_request(kind, self._ctx, large=large)
        # policy.timeouts.total_ms covers the first attempt, the wait and the retry.
        deadline = Deadline(self.contract.policy.timeouts.total_ms / 1000.0)
        exchange = self._send(self._ctx, request, attempt=1, route="primary")
        failure = judge(request, exchange, self.contract)
        run = self._record(request, exchange, failure, execution)
        events = self._check_drift(exchange, kind)
        outcome = ProbeOutcome(
            probe=kind,
            prompt_size=request.prompt_size,
            ok=failure is None,
            failure=failure,
            runs=(run,),
        )
        if failure is not None and kind != "invalid_request":
            outcome = self._recover(
                request,
                outcome,
                failure,
                execution,
                events,
                large=large,
                cancel=cancel,
                first=exchange,
                deadline=deadline,
            )
        self.metrics.probe_result(
            kind, ok=outcome.ok, at=outcome.runs[-1].started_at, prompt_size=request.prompt_size
        )
        return outcome, events

    def _recover(
        self,
        request: ProbeRequest,
        outcome: ProbeOutcome,
        failure: Failure,
        execution: str,
        events: list[DriftEvent],
        *,
        large: bool,
        cancel: threading.Event | None = None,
        first: Exchange,
        deadline: Deadline,
    ) -> ProbeOutcome:
        """The resilience path after a failed first attempt: one retry, then one fallback.

        The retry waits as the application's client would (:func:`chatcontract.policy.decide`):
        the server's ``retry-after`` / ``retry-after-ms`` on a rate limit, else the contract's
        backoff; a ``retry-after`` above ``policy.retry.retry_after_cap_ms``, or a wait that
        does not fit in what is left of ``deadline``, sends no retry (the fallback is probed).
        Once ``cancel`` is set (the process is stopping) no further request is sent, nor is
        the wait finished.
        """
        stop = cancel or threading.Event()

        def stopping() -> bool:
            return stop.is_set()

        decision = failure.retry
        delay_s = 0.0
        if decision == "retry" and failure.code == "deadline":
            # policy.timeouts.total_ms covers the retries: an attempt that used it all up
            # leaves none for a retry (the application's client would not send one); only the
            # fallback, with the time the contract reserves for it, is left.
            decision = "fallback"
        elif decision == "retry":
            headers = first.response.rate_limit_headers if first.response is not None else {}
            verdict = decide(
                failure,
                attempt=1,
                policy=self.contract.policy,
                retryable=self.contract.errors.retryable,
                non_retryable=self.contract.errors.non_retryable,
                deadline=deadline,
                has_fallback=bool(self.contract.fallbacks),
                retry_after_s=parse_retry_after(headers, now=self._clock()),
                rng=self._rng,
            )
            if verdict.action == "retry":
                delay_s = verdict.delay_s
            else:
                decision = "none" if verdict.stop == "non_retryable" else "fallback"
        self.metrics.event(
            RetryDecided(
                route="primary",
                model=self.target.model,
                category=failure.category,
                decision=decision,
                attempt=1,
            )
        )
        if decision == "retry" and delay_s > 0 and stop.wait(delay_s):
            return outcome  # stopped while waiting: no retry, no fallback
        if decision == "retry" and not stopping() and not self._paused():
            retry = self._send(self._ctx, request, attempt=2, route="primary")
            retry_failure = judge(request, retry, self.contract)
            run = self._record(request, retry, retry_failure, execution)
            events += self._check_drift(retry, request.probe)
            outcome = dataclasses.replace(
                outcome,
                ok=retry_failure is None,
                failure=retry_failure,
                runs=(*outcome.runs, run),
                retried=True,
                retry_ok=retry_failure is None,
            )
            if retry_failure is None:
                self.metrics.event(
                    RetrySucceeded(route="primary", model=self.target.model, attempts=2)
                )
                return outcome
            failure = retry_failure
            # One retry is the bound: a failure that would be retried again moves on.
            decision = "none" if failure.retry == "none" else "fallback"
        if decision != "fallback" or stopping() or self._paused():
            return outcome
        fallback = self._fallback_context()
        if fallback is None:
            return outcome
        name, ctx = fallback
        self.metrics.event(
            FallbackActivated(
                from_route="primary",
                to_route=name,
                category=failure.category,
                model=self.target.model,
            )
        )
        fb_request = build_request(request.probe, ctx, large=large)
        fb_exchange = self._send(ctx, fb_request, attempt=len(outcome.runs) + 1, route=name)
        fb_failure = judge(fb_request, fb_exchange, ctx.target.contract)
        run = self._record(fb_request, fb_exchange, fb_failure, execution)
        return dataclasses.replace(
            outcome, runs=(*outcome.runs, run), fallback_route=name, fallback_ok=fb_failure is None
        )

    def _send(
        self, ctx: CheckContext, request: ProbeRequest, *, attempt: int, route: str
    ) -> Exchange:
        exchange = ctx.send(request.body, headers=ctx.headers(), timeout=request.timeout)
        ctx.exchanges.clear()  # the context would otherwise keep every probe forever
        return msgspec.structs.replace(exchange, attempt=attempt, route=route)

    def _record(
        self, request: ProbeRequest, exchange: Exchange, failure: Failure | None, execution: str
    ) -> ProbeRun:
        cost = probe_cost(
            exchange,
            prices=self.contract.policy.prices,
            max_tokens=request.max_tokens,
            prompt_tokens_estimate=request.prompt_tokens_estimate,
        )
        run = ProbeRun.from_exchange(
            exchange,
            probe=request.probe,
            started_at=self._clock(),
            ok=failure is None,
            failure=failure,
            execution_id=execution,
            prompt_size=request.prompt_size,
            usage_expected=request.usage_expected,
            cost_usd=cost.usd,
            cost_estimated=cost.estimated,
            budget_ms=request.budget_ms,
            target=self.identity.key,
        )
        # record_runs returns the count stored; _store_write None when the store refused.
        if self._store_write(self.store.record_runs, (run,)) is None and run.cost_usd > 0:
            day = utc_day(run.started_at)
            if day not in self._unrecorded_spend:
                self._unrecorded_spend.clear()
            self._unrecorded_spend[day] = self._unrecorded_spend.get(day, 0.0) + run.cost_usd
        if request.probe != "invalid_request":
            # A deliberate bad request is not traffic: it must not trip validation alerts.
            self.metrics.exchange(exchange)
        return run

    def _fallback_context(self) -> tuple[str, CheckContext] | None:
        if not self._fallback_resolved:
            self._fallback_resolved = True
            for route in self.contract.fallbacks[:1]:
                target = fallback_target(self.target, route, self._environ)
                if target is None:
                    logger.warning(
                        "fallback route %s cannot be probed: no key for its host", route.name
                    )
                    continue
                self._fallback = (
                    route.name,
                    CheckContext.open(target, SuiteOptions(), inner=self._inner),
                )
        return self._fallback

    # -- drift --------------------------------------------------------------------------------

    def _check_drift(self, exchange: Exchange, kind: ProbeKind) -> list[DriftEvent]:
        baseline = self._baseline
        if baseline is None or exchange.response is None:
            return []
        events = []
        observed = observe([exchange], requested_models={self.target.model})
        for difference in compare(baseline.observation, observed):
            key = f"{self.identity.key}|{baseline.digest}|{difference.key}"
            if key in self._drift_keys:
                continue
            event = DriftEvent(
                at=self._clock(),
                kind=difference.kind,
                detail=difference.detail,
                key=key,
                probe=kind,
                target=self.identity.key,
            )
            stored = self._store_write(self.store.record_drift, event)
            if stored is None:
                continue  # not stored (disk full): seen again on a later probe, counted then
            if len(self._drift_keys) >= _MAX_REMEMBERED_KEYS:
                self._drift_keys.clear()  # the store's unique key still deduplicates
            self._drift_keys.add(key)
            if stored:
                self.metrics.drift_recorded(event)
                events.append(event)
        return events

    def _store_write(
        self, write: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs
    ) -> _R | None:
        """Run a store write; None when the store refused it (the store remembers why).

        Logged once when writes start failing, not on every write of the outage.
        """
        was_writable = self.store.health().writable
        try:
            return write(*args, **kwargs)
        except sqlite3.Error as exc:
            if self.store.closed:
                raise
            if was_writable:
                logger.warning("probe store %s: writes fail: %s", self.store.path, exc)
            return None

    # -- housekeeping -------------------------------------------------------------------------

    def maintain(self, now: float) -> None:
        """Prune old history when due, pick up a new validate report and a new baseline."""
        if self._last_prune is None or now - self._last_prune >= self.options.prune_every_s:
            self._last_prune = now
            self._store_write(self.store.prune, before=now - self.options.retention_days * _DAY_S)
        self._reload_baseline()
        self._ingest_validation()

    def _reload_baseline(self) -> None:
        path = self.options.baseline_path
        stamp = _stamp(path)
        if path is None or stamp is None or stamp == self._baseline_stamp:
            return
        self._baseline_stamp = stamp
        try:
            self._baseline = Baseline.load(path)
        except ConfigError as exc:
            logger.warning("baseline not loaded: %s", exc)

    def _ingest_validation(self) -> None:
        path = self.options.last_validate_path
        stamp = _stamp(path)
        if path is None or stamp is None or stamp == self._validate_stamp:
            return
        try:
            record = read_validate_record(path)
        except ConfigError as exc:
            self._validate_stamp = stamp
            logger.warning("validate report not ingested: %s", exc)
            return
        target = None if record.target is None else record.target.key
        run = validation_run(record.report, fallback_at=stamp[0], target=target)
        if self._store_write(self.store.record_validation, run) is None:
            return  # retried on the next cycle
        self._validate_stamp = stamp
        last = self.store.last_validation(target=self.identity.key)
        if last is not None:
            self.metrics.validation(last)


def _stamp(path: str | None) -> tuple[float, int] | None:
    if path is None:
        return None
    try:
        info = Path(path).stat()
    except OSError:
        return None
    return (info.st_mtime, info.st_size)
