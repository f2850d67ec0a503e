"""``chatcontract baseline accept`` and ``chatcontract drift``: shapes accepted, shapes changed.

``baseline accept`` records what the provider sends (response, stream chunk, usage and
error-body shapes, finish reasons, response models) from the last ``validate`` run or from the
probe store, into ``chatcontract.baseline.json`` (review it in git). ``drift`` compares the
latest observations with it: exit 0 no drift, 1 drift, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from chatcontract.contract import DEFAULT_PATH, Contract, load
from chatcontract.drift import (
    DEFAULT_BASELINE_PATH,
    LAST_VALIDATE_PATH,
    Baseline,
    Observation,
    ShapeSample,
    compare,
    observe_samples,
    read_last_validate,
)
from chatcontract.errors import ConfigError, UsageError
from chatcontract.probe.store import DEFAULT_DB_PATH, ProbeStore

__all__ = ["observation_from_store", "register"]

SOURCES = ("validate", "probe")
DEFAULT_HOURS = 24


def _common(parser: argparse.ArgumentParser, *, default_source: str) -> None:
    parser.add_argument(
        "--contract",
        default=None,
        metavar="FILE",
        help="contract file (default: ./chatcontract.yaml if present)",
    )
    parser.add_argument(
        "--db",
        default=DEFAULT_DB_PATH,
        metavar="FILE",
        help=f"probe history (default {DEFAULT_DB_PATH})",
    )
    parser.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE_PATH,
        metavar="FILE",
        help=f"baseline file (default ./{DEFAULT_BASELINE_PATH})",
    )
    parser.add_argument(
        "--from",
        dest="source",
        choices=SOURCES,
        default=default_source,
        help=f"observations from the last validate run ({LAST_VALIDATE_PATH}) "
        f"or from the probe store (default {default_source})",
    )
    parser.add_argument(
        "--validate-file",
        default=LAST_VALIDATE_PATH,
        metavar="FILE",
        help=f"the validate run to read (default {LAST_VALIDATE_PATH})",
    )
    parser.add_argument(
        "--hours",
        type=int,
        default=DEFAULT_HOURS,
        metavar="N",
        help=f"with --from probe: probe runs of the last N hours (default {DEFAULT_HOURS})",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    baseline = sub.add_parser(
        "baseline",
        help="manage the accepted response shapes drift is measured against",
        description="Manage the drift baseline.",
    )
    actions = baseline.add_subparsers(
        dest="baseline_command", metavar="ACTION", parser_class=type(baseline)
    )
    accept = actions.add_parser(
        "accept",
        help="accept the shapes seen in the last validate run (or recent probes) as baseline",
        description="Record the response, stream chunk, usage and error-body shapes, finish "
        "reasons and response models seen, as the baseline drift is measured against.",
    )
    _common(accept, default_source="validate")
    accept.set_defaults(handler=run_accept)
    baseline.set_defaults(handler=_baseline_help(baseline))

    drift = sub.add_parser(
        "drift",
        help="compare the latest observations with the baseline; exit 0 none, 1 drift, 2 bad input",
        description="Print the differences between the accepted baseline and the latest "
        "observations (the probe store by default).",
    )
    _common(drift, default_source="probe")
    drift.add_argument("--format", choices=("text", "json"), default="text")
    drift.set_defaults(handler=run_drift)


def _baseline_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def handler(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return handler


def _contract(args: argparse.Namespace) -> Contract | None:
    if args.contract is not None:
        if not Path(args.contract).is_file():
            raise ConfigError(f"{args.contract}: no such contract file")
        return load(args.contract)
    return load(DEFAULT_PATH) if Path(DEFAULT_PATH).is_file() else None


def observation_from_store(path: str, *, hours: int, now: float | None = None) -> Observation:
    """The observation of the primary-route probe runs of the last ``hours`` in a store."""
    if not Path(path).is_file():
        raise ConfigError(
            f"{path}: no probe history; run 'chatcontract probe --once' first (or pass --db)"
        )
    since = (time.time() if now is None else now) - hours * 3600
    with ProbeStore.open(path) as store:
        rows = store.shape_rows(since=since)
    samples = [
        ShapeSample(
            status=row["status"],
            stream=row["stream"],
            paths=row["paths"],
            finish_reason=row["finish_reason"],
            model=row["model"],
            in_band_error=200 <= row["status"] < 300 and row["kind"] == "api_error",
        )
        for row in rows
    ]
    return observe_samples(samples)


def _observation(args: argparse.Namespace) -> tuple[Observation, str]:
    if not 1 <= args.hours <= 24 * 366:
        raise UsageError("--hours must be between 1 and 8784")
    if args.source == "validate":
        _report, observation = read_last_validate(args.validate_file)
        where = args.validate_file
    else:
        observation = observation_from_store(args.db, hours=args.hours)
        where = f"{args.db} (last {args.hours} h)"
    if observation.samples == 0:
        raise ConfigError(f"{where}: no responses observed; nothing to compare")
    return observation, where


def run_accept(args: argparse.Namespace) -> int:
    contract = _contract(args)
    observation, where = _observation(args)
    baseline = Baseline.accept(
        observation,
        source=args.source,
        contract_name=None if contract is None else contract.name,
        provider=None if contract is None else contract.provider,
    )
    baseline.save(args.baseline)
    data = observation.to_dict()
    sections = [name for name in ("response", "stream_chunks", "usage") if data[name]]
    errors = ", ".join(data["error_bodies"]) or "none"
    out = sys.stdout
    out.write(
        f"baseline written to {args.baseline} from {where} ({observation.samples} responses)\n"
    )
    out.write(f"  shapes: {', '.join(sections) or 'none'}; error bodies by status: {errors}\n")
    out.write(
        f"  finish reasons: {', '.join(data['finish_reasons']) or 'none'}; "
        f"models: {', '.join(data['models']) or 'none'}\n"
    )
    out.write("review it and commit it; probes now report drift from it\n")
    return 0


def run_drift(args: argparse.Namespace) -> int:
    baseline = Baseline.load(args.baseline)
    observation, where = _observation(args)
    differences = compare(baseline.observation, observation)
    if args.format == "json":
        json.dump(
            {
                "baseline": args.baseline,
                "baseline_accepted_at": baseline.accepted_at,
                "observed_from": where,
                "observations": observation.samples,
                "drift": bool(differences),
                "differences": [difference.to_dict() for difference in differences],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    elif differences:
        sys.stdout.write(
            f"drift: {len(differences)} difference(s) between {args.baseline} "
            f"(accepted {baseline.accepted_at}) and {where}\n"
        )
        width = max(len(difference.kind) for difference in differences)
        for difference in differences:
            sys.stdout.write(f"  {difference.kind:<{width}}  {difference.detail}\n")
    else:
        sys.stdout.write(
            f"no drift: {observation.samples} responses from {where} match {args.baseline}\n"
        )
    return 1 if differences else 0
