"""``chatcontract probe``: synthetic probes on a schedule, with metrics, a dashboard and drift.

``--once`` runs one cycle, prints each probe's verdict and exits 0 (all passed, or probing is
paused by the daily cost cap: it says "paused") or 1 (a probe failed, or the store refused to
record the cycle). Otherwise it serves ``/metrics``, ``/healthz``, ``/livez``, ``/api/summary``
and the dashboard on ``--listen`` and probes every ``--interval`` until Ctrl-C or SIGTERM; a
probe store that refuses writes (disk full) does not stop it (``/healthz`` says degraded).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import sqlite3
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry

from chatcontract._listen import is_loopback
from chatcontract.drift import DEFAULT_BASELINE_PATH
from chatcontract.errors import ConfigError, UsageError
from chatcontract.identity import clean_base_url
from chatcontract.probe import (
    DEFAULT_DB_PATH,
    PROBE_KINDS,
    AppServer,
    CycleResult,
    Prober,
    ProberOptions,
    ProbeStore,
    Scheduler,
    create_probe_app,
    run_loop,
    stop_on_signals,
)
from chatcontract.probe.metrics import ProbeMetrics
from chatcontract.probe.records import ProbeKind
from chatcontract.probe.runner import ProbeOutcome
from chatcontract.probe.service import STOP_GRACE_S
from chatcontract.probe.summary import summary_target
from chatcontract.target import Target, open_target

from ._common import add_target_options

__all__ = ["parse_interval", "parse_listen", "register"]

_INTERVAL_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 86_400.0


def parse_interval(text: str) -> float:
    """``60s``, ``5m``, ``1h``, ``1500ms`` or plain seconds → seconds (1 s to 24 h)."""
    match = _INTERVAL_RE.match(text)
    if match is None:
        raise UsageError(f"--interval {text!r}: write a duration such as 60s, 5m or 1h")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise UsageError(f"--interval {text!r}: must be between 1s and 24h")
    return seconds


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) → ``(host, port)``; port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {text!r}: write HOST:PORT, e.g. 127.0.0.1:9464")
    return host, int(port)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "probe",
        help="run synthetic probes on a schedule; serve /metrics, /api/summary and a dashboard",
        description="Probe the contract's endpoint on a schedule (the embedded simulator when "
        "there is no contract and no key), store every probe, serve Prometheus metrics and the "
        "contract-health dashboard, and report drift from the accepted baseline.",
    )
    add_target_options(parser)
    parser.add_argument(
        "--interval",
        default=None,
        metavar="DURATION",
        help="time between cycles, e.g. 60s, 5m (default: the contract's policy.probe.interval_s)",
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:9464",
        metavar="HOST:PORT",
        help="where to serve /metrics, /api/summary and the dashboard "
        "(default 127.0.0.1:9464; port 0 picks a free one; they have no authentication: "
        "another address is served with a warning, firewall it)",
    )
    parser.add_argument(
        "--db",
        default=DEFAULT_DB_PATH,
        metavar="FILE",
        help=f"probe history, SQLite (default {DEFAULT_DB_PATH})",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="FILE",
        help=f"accepted baseline for drift (default ./{DEFAULT_BASELINE_PATH} if present)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="run one cycle and exit: 0 all probes passed (or paused by the daily cost cap), "
        "1 a probe failed or the cycle could not be stored",
    )
    parser.add_argument("--simulate", action="store_true", help="probe the embedded simulator")
    parser.add_argument(
        "--scenario",
        default=None,
        metavar="NAME",
        help="with --simulate: a simulator fault, e.g. server_error",
    )
    parser.add_argument(
        "--probe",
        action="append",
        default=[],
        metavar="KIND",
        choices=PROBE_KINDS,
        help=f"run only this probe kind (repeatable): {', '.join(PROBE_KINDS)}",
    )
    parser.add_argument(
        "--retention-days",
        type=int,
        default=30,
        metavar="N",
        help="keep N days of history (default 30)",
    )
    parser.set_defaults(handler=run)


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _check_args(args: argparse.Namespace) -> tuple[float | None, tuple[str, int]]:
    interval = None if args.interval is None else parse_interval(args.interval)
    listen = parse_listen(args.listen)
    if not 1 <= args.retention_days <= 3650:
        raise UsageError("--retention-days must be between 1 and 3650")
    if args.scenario is not None:
        from chatcontract.simulator import SCENARIO_NAMES

        if args.scenario not in SCENARIO_NAMES:
            raise UsageError(
                f"unknown scenario {args.scenario!r}; list them with "
                "'chatcontract simulate --list-scenarios'"
            )
    if args.baseline is not None and not Path(args.baseline).is_file():
        raise UsageError(
            f"--baseline {args.baseline}: no such file; record one with "
            "'chatcontract baseline accept'"
        )
    return interval, listen


def run(args: argparse.Namespace) -> int:
    interval, (host, port) = _check_args(args)
    kinds: tuple[ProbeKind, ...] | None = tuple(args.probe) or None
    baseline_path = args.baseline or (
        DEFAULT_BASELINE_PATH if Path(DEFAULT_BASELINE_PATH).is_file() else None
    )
    options = ProberOptions(
        kinds=kinds, retention_days=float(args.retention_days), baseline_path=baseline_path
    )
    with (
        open_target(
            contract_path=args.contract,
            simulate=args.simulate,
            scenario=args.scenario,
            base_url=args.base_url,
            model=args.model,
        ) as target,
        ProbeStore.open(args.db) as store,
    ):
        try:
            return _serve(
                args,
                target=target,
                store=store,
                options=options,
                interval=interval,
                host=host,
                port=port,
            )
        except sqlite3.Error as exc:  # the disk filled up, the file was removed, ...
            raise ConfigError(f"probe store {store.path}: {exc}") from exc


def _serve(
    args: argparse.Namespace,
    *,
    target: Target,
    store: ProbeStore,
    options: ProberOptions,
    interval: float | None,
    host: str,
    port: int,
) -> int:
    registry = CollectorRegistry()
    metrics = ProbeMetrics(registry, contract=target.contract)
    prober = Prober(target=target, store=store, metrics=metrics, clock=time.time, options=options)
    try:
        _banner(target, args, options.baseline_path, prober)
        if args.once:
            return _once(prober, store)
        app = create_probe_app(
            store=store,
            registry=registry,
            clock=time.time,
            contract=target.contract,
            metrics=metrics,
            target=summary_target(target.base_url, simulated=target.simulated, model=target.model),
            unrecorded_spend=prober.unrecorded_spend,
        )
        seconds = interval or float(target.contract.policy.probe.interval_s)
        scheduler = Scheduler(clock=time.time, rng=random.Random(), interval_s=seconds)  # noqa: S311 - jitter, not crypto
        stop = threading.Event()
        with AppServer(app, host=host, port=port) as server, stop_on_signals(stop):
            if not is_loopback(host):
                _say(exposure_warning(host, port))
            _say(
                f"serving {server.url}/ (dashboard), {server.url}/metrics, "
                f"{server.url}/api/summary; probing every {seconds:g}s; Ctrl-C stops"
            )
            cycles = run_loop(
                prober=prober,
                scheduler=scheduler,
                clock=time.time,
                stop=stop,
                on_cycle=lambda result: _log_cycle(result, store),
                on_store_error=lambda exc: _say(
                    f"probe store {store.path}: {exc}; still serving (see /healthz)"
                ),
                on_abandoned=lambda: _say(
                    f"the endpoint did not answer within {STOP_GRACE_S:g}s of the stop request: "
                    "the probe in flight is not recorded"
                ),
            )
        _say(f"stopped after {cycles} cycle(s); history in {store.path}")
        return 0
    finally:
        prober.close()


def exposure_warning(host: str, port: int) -> str:
    """What the probe says when ``--listen`` is not a loopback address."""
    return (
        f"warning: --listen {host}:{port} is not a loopback address and the probe's HTTP "
        "server has no authentication: anyone who reaches it reads /metrics, /api/summary "
        "and the dashboard (the endpoint, the model, every failure); firewall it, or use "
        "127.0.0.1"
    )


def cleartext_warning(base_url: str) -> str | None:
    """What the probe says of an endpoint its key would reach unencrypted (None: it would not)."""
    try:
        parts = urlsplit(base_url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme != "http" or not host or is_loopback(host):
        return None
    return (
        f"warning: {clean_base_url(base_url)} is plain http to a host that is not loopback: "
        "the API key and every probe travel unencrypted, on every cycle; use https"
    )


def _once(prober: Prober, store: ProbeStore) -> int:
    """One cycle: 0 all passed or paused by the cost cap, 1 a probe failed or was not stored."""
    result = prober.run_cycle()
    _print_cycle(result)
    health = store.health()
    if not health.writable:
        _say(f"history not stored: probe store {store.path}: {health.error}")
        return 1
    if result.paused and all(outcome.ok for outcome in result.outcomes):
        return 0
    return 0 if result.ok else 1


def _banner(target: Target, args: argparse.Namespace, baseline: str | None, prober: Prober) -> None:
    where = target.base_url
    if target.simulated:
        why = "--simulate" if args.simulate else "no contract file and no API key configured"
        scenario = f", scenario {target.scenario}" if target.scenario else ""
        where += f" (embedded simulator: {why}{scenario})"
    _say(f"probing {where}, model {target.model}: {', '.join(prober.kinds)}")
    if not target.simulated:
        urls = [target.base_url]
        urls += [route.base_url for route in target.contract.fallbacks[:1] if route.base_url]
        for url in dict.fromkeys(urls):
            warning = cleartext_warning(url)
            if warning is not None:
                _say(warning)
    _say(
        f"history: {prober.store.path} (rows of {prober.identity}); drift baseline: "
        f"{baseline or 'none (record one with chatcontract baseline accept)'}"
    )
    others = prober.store.other_targets(prober.identity.key)
    ignored = others.in_words()
    if ignored:
        _say(f"not counted for this target (page, cost, drift): {', '.join(ignored)} probe run(s)")


def _describe(outcome: ProbeOutcome) -> str:
    size = f" ({outcome.prompt_size})" if outcome.probe == "non_streaming" else ""
    # The verdict is the primary route's final attempt (a retry's, when there was one).
    verdict = [run for run in outcome.runs if run.route == "primary"][-1]
    latency = f"{verdict.total_ms:.0f} ms" if verdict.total_ms is not None else "-"
    line = f"{'pass' if outcome.ok else 'FAIL'}  {outcome.probe}{size}  {latency}"
    failure = outcome.failure
    if failure is not None and not outcome.ok:
        status = f" HTTP {failure.status}" if failure.status is not None else ""
        line += f"  {failure.kind}/{failure.category}/{failure.code}{status}: {failure.message}"
    if outcome.retried:
        line += f"  [retried: {'ok' if outcome.retry_ok else 'failed'}]"
    if outcome.fallback_route is not None:
        line += (
            f"  [fallback {outcome.fallback_route}: {'ok' if outcome.fallback_ok else 'failed'}]"
        )
    return line


def _print_cycle(result: CycleResult) -> None:
    out = sys.stdout
    if result.paused and not result.outcomes:
        cost = result.cost
        out.write(
            f"paused: the daily cost cap is reached (spent ${cost.spent_usd:.6f} of "
            f"${cost.cap_usd:g} on {cost.day} UTC); no probe sent, probing resumes at the next "
            "UTC midnight\n"
        )
        return
    for outcome in result.outcomes:
        out.write(f"  {_describe(outcome)}\n")
    for kind in result.skipped:
        out.write(
            f"  skip  {kind}  (paused: daily cost cap reached)\n"
            if result.paused
            else f"  skip  {kind}\n"
        )
    for event in result.drift:
        out.write(f"  drift {event.kind}: {event.detail}\n")
    cost = result.cost
    passed = sum(1 for outcome in result.outcomes if outcome.ok)
    out.write(
        f"{passed}/{len(result.outcomes) + len(result.skipped)} probes passed; "
        f"spent today ${cost.spent_usd:.6f} of ${cost.cap_usd:g} cap"
        f"{' (paused until the next UTC day)' if result.paused else ''}\n"
    )


def _log_cycle(result: CycleResult, store: ProbeStore) -> None:
    at = dt.datetime.fromtimestamp(result.at, dt.UTC).strftime("%H:%M:%SZ")
    passed = sum(1 for outcome in result.outcomes if outcome.ok)
    failed = [
        o.probe + (" (large)" if o.prompt_size == "large" else "")
        for o in result.outcomes
        if not o.ok
    ]
    line = f"{at} cycle {result.index + 1}: {passed}/{len(result.outcomes)} passed"
    if failed:
        line += f" (failed: {', '.join(failed)})"
    if result.drift:
        line += f"; {len(result.drift)} new drift event(s)"
    if result.paused:
        line += "; paused: daily cost cap reached"
    health = store.health()
    if not health.writable:
        line += f"; history NOT stored ({health.error}; see /healthz)"
    _say(line)
