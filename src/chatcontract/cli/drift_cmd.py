"""``chatcontract baseline accept`` and ``chatcontract drift``: shapes accepted, shapes changed.

``baseline accept`` records what the provider sends (response, stream chunk, usage and
error-body shapes, finish reasons, response models) from the last ``validate`` run or from the
probe store, into ``chatcontract.baseline.json`` (review it in git), with the target it came
from and the run's verdict. ``drift`` compares the latest observations with it: exit 0 no
drift, 1 drift, 2 bad input. Both read the last validate run by default (``--from probe``: the
probe store), so ``drift`` right after ``baseline accept`` compares like with like.

``baseline accept`` refuses (one line, exit 1, nothing written) a run that failed, ran against
the embedded simulator, or does not say which target it ran against, unless ``--force``. Only
one target's observations are ever read: the validate run's, or, from the probe store, the
baseline's target (``drift``), else the contract's endpoint and model (``--base-url``,
``--model`` override them), else the target probed last.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    read_validate_record,
)
from chatcontract.errors import ConfigError, UsageError
from chatcontract.identity import UNKNOWN_TARGET, TargetIdentity
from chatcontract.probe.records import PROBE_KINDS
from chatcontract.probe.store import DEFAULT_DB_PATH, ProbeStore
from chatcontract.redact import redact_text, redact_value

from ._common import refuse_overwriting_inputs, write_out

__all__ = ["EXIT_REFUSED", "observation_from_store", "register"]

SOURCES = ("validate", "probe")
#: Where both commands read observations from unless ``--from`` says otherwise.
DEFAULT_SOURCE = "validate"
DEFAULT_HOURS = 24
#: ``baseline accept`` refused a failed, simulated or unattributed run (nothing written).
EXIT_REFUSED = 1


def _common(parser: argparse.ArgumentParser) -> None:
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
        default=DEFAULT_SOURCE,
        help=f"observations from the last validate run ({LAST_VALIDATE_PATH}) "
        f"or from the probe store (default {DEFAULT_SOURCE}, for both baseline accept and drift)",
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
    parser.add_argument(
        "--base-url",
        default=None,
        help="with --from probe: the probed endpoint, when probe ran with --base-url",
    )
    parser.add_argument(
        "--model", default=None, help="with --from probe: the probed model ($CHATCONTRACT_MODEL)"
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
        help="accept the shapes seen in the last validate run (or recent probes) as baseline; "
        "exit 1 refused (failed or simulated run), 2 bad input",
        description="Record the response, stream chunk, usage and error-body shapes, finish "
        "reasons and response models seen, as the baseline drift is measured against. A failed "
        "or simulated run is refused (exit 1) unless --force.",
    )
    _common(accept)
    accept.add_argument(
        "--force",
        action="store_true",
        help="accept a failed, simulated or unattributed run anyway (recorded as forced)",
    )
    accept.set_defaults(handler=run_accept)
    baseline.set_defaults(handler=_baseline_help(baseline))

    drift = sub.add_parser(
        "drift",
        help="compare the latest observations with the baseline; exit 0 none, 1 drift, 2 bad input",
        description="Print the differences between the accepted baseline and the latest "
        "observations of the same target (the last validate run by default).",
    )
    _common(drift)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Observed:
    """Observations of one target, where they came from, and what the run said."""

    observation: Observation
    where: str
    target: TargetIdentity | None
    verdict: str | None
    failed_detail: str = ""


def observation_from_store(
    path: str, *, hours: int, target: str | None, now: float | None = None
) -> Observation:
    """The observation of ``target``'s primary-route probe runs of the last ``hours``."""
    _check_probe_history(path)
    since = (time.time() if now is None else now) - hours * 3600
    with ProbeStore.open(path) as store:
        rows = store.shape_rows(since=since, target=target)
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


def _is_probe_store(path: str) -> bool:
    """Whether ``path`` is a probe store ``chatcontract probe`` wrote, looked at read-only.

    ``ProbeStore.open`` creates its schema in whatever SQLite file it is given: an empty file
    or another program's database named by a wrong ``--db`` would be written to by a command
    that only reads.
    """
    if not Path(path).is_file():
        return False
    try:
        uri = f"{Path(path).resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            row = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
    except sqlite3.OperationalError as exc:
        # Not "not a store": a WAL store cannot be read where its -shm cannot be created
        # (a directory this user may not write, the probe's service user owning it).
        raise ConfigError(
            f"{path}: cannot read the probe store ({exc}); SQLite creates "
            f"{Path(path).name}-shm beside it to read it, so run as the user the probe runs "
            "as, or copy the file to a directory you can write"
        ) from exc
    except sqlite3.Error:
        return False
    return row is not None


def _check_probe_history(path: str) -> None:
    if not _is_probe_store(path):
        raise ConfigError(
            f"{path}: no probe history (not a store 'chatcontract probe' wrote); run "
            "'chatcontract probe --once' first (or pass --db)"
        )


def _identity_from_key(key: str) -> TargetIdentity:
    where, _, model = key.rpartition(" model=")
    if where == "simulated":
        return TargetIdentity.simulated_for(model)
    return TargetIdentity.real(where, model)


def _store_target(
    args: argparse.Namespace, contract: Contract | None, baseline: Baseline | None
) -> TargetIdentity | None:
    """Whose probe rows to read: the baseline's target, the contract's, or the latest probed."""
    if baseline is not None and baseline.target is not None:
        return baseline.target
    if contract is not None:
        base_url = args.base_url or contract.endpoint.base_url
        return TargetIdentity.real(base_url, contract.resolved_model(args.model, os.environ))
    if not _is_probe_store(args.db):
        return None
    with ProbeStore.open(args.db) as store:
        key = store.latest_target()
    return None if key is None else _identity_from_key(key)


def _from_store(
    args: argparse.Namespace, contract: Contract | None, baseline: Baseline | None
) -> _Observed:
    _check_probe_history(args.db)
    target = _store_target(args, contract, baseline)
    if target is None:
        raise ConfigError(f"{args.db}: no probe run records its target; run 'chatcontract probe'")
    observation = observation_from_store(args.db, hours=args.hours, target=target.key)
    where = f"{args.db} (probes of {target}, last {args.hours} h)"
    since = time.time() - args.hours * 3600
    with ProbeStore.open(args.db) as store:
        others = store.other_targets(target.key, since=since)
        failing = [
            kind
            for kind, state in store.probe_states(
                PROBE_KINDS, target=target.key, since=since
            ).items()
            if state.last_ok is False
        ]
    if observation.samples == 0:
        ignored = others.in_words()
        suffix = f"; not counted: {', '.join(ignored)} run(s)" if ignored else ""
        raise ConfigError(f"{where}: no responses observed{suffix}; nothing to compare")
    return _Observed(
        observation=observation,
        where=where,
        target=target,
        verdict="fail" if failing else "pass",
        failed_detail=f"the latest probes of {', '.join(failing)} failed" if failing else "",
    )


def _observed(
    args: argparse.Namespace, contract: Contract | None, baseline: Baseline | None = None
) -> _Observed:
    if not 1 <= args.hours <= 24 * 366:
        raise UsageError("--hours must be between 1 and 8784")
    if args.source == "probe":
        return _from_store(args, contract, baseline)
    record = read_validate_record(args.validate_file)
    where = args.validate_file
    if record.observation.samples == 0:
        raise ConfigError(f"{where}: no responses observed; nothing to compare")
    failed = record.report.get("summary", {})
    count = failed.get("failed") if isinstance(failed, dict) else None
    detail = "the validate run failed" + (f" ({count} check(s) failed)" if count else "")
    return _Observed(
        observation=record.observation,
        where=where,
        target=record.target,
        verdict=record.verdict,
        failed_detail=detail if record.verdict != "pass" else "",
    )


def _refusals(observed: _Observed) -> list[str]:
    """Why a run must not become the baseline (empty: it may)."""
    reasons = []
    if observed.target is None:
        reasons.append(
            f"{observed.where} does not say which target it ran against (written by an older "
            "chatcontract); run 'chatcontract validate' again"
        )
    elif observed.target.simulated:
        reasons.append(
            f"{observed.where} observed the embedded simulator, not a real endpoint; "
            "validate or probe the real endpoint first"
        )
    if observed.verdict != "pass":
        reasons.append(
            (observed.failed_detail or "the run did not pass")
            + "; a baseline accepts the shapes of a passing run"
        )
    return reasons


def _check_baseline_path(path: str) -> None:
    """Fail before any work when ``--baseline`` cannot be written (one line, exit 2)."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(
            f"--baseline {path} is a directory; pass a file path, e.g. "
            f"{target / DEFAULT_BASELINE_PATH}"
        )
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(
            f"--baseline {path}: the directory {parent} does not exist; create it or pick "
            "another path"
        )
    try:
        handle, probe = tempfile.mkstemp(prefix=".chatcontract-write-check-", dir=parent)
    except OSError as exc:
        raise UsageError(
            f"--baseline {path}: cannot write in {parent} ({exc.strerror}); pick a writable path"
        ) from exc
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def run_accept(args: argparse.Namespace) -> int:
    refuse_overwriting_inputs(
        args.baseline,
        what=f"--baseline {args.baseline}",
        reads={
            "--contract": args.contract or DEFAULT_PATH,
            "--validate-file": args.validate_file,
            "--db": args.db,
        },
    )
    _check_baseline_path(args.baseline)
    contract = _contract(args)
    observed = _observed(args, contract)
    refusals = _refusals(observed)
    if refusals and not args.force:
        sys.stderr.write(
            redact_text(
                f"chatcontract: refused: {'; '.join(refusals)}; nothing written "
                "(--force accepts it anyway)\n"
            )
        )
        return EXIT_REFUSED
    baseline = Baseline.accept(
        observed.observation,
        source=args.source,
        contract_name=None if contract is None else contract.name,
        provider=None if contract is None else contract.provider,
        target=observed.target,
        verdict=observed.verdict,
        forced=bool(refusals),
    )
    try:
        baseline.save(args.baseline)
    except OSError as exc:
        raise ConfigError(
            f"--baseline {args.baseline}: cannot write ({exc.strerror}); nothing written"
        ) from exc
    data = baseline.observation.to_dict()
    sections = [name for name in ("response", "stream_chunks", "usage") if data[name]]
    errors = ", ".join(data["error_bodies"]) or "none"
    out = sys.stdout
    out.write(
        f"baseline written to {args.baseline} from {observed.where} "
        f"({baseline.observation.samples} responses)\n"
    )
    out.write(
        f"  target: {observed.target or UNKNOWN_TARGET}; verdict: {observed.verdict or 'unknown'}"
        f"{' (forced: ' + '; '.join(refusals) + ')' if refusals else ''}\n"
    )
    out.write(f"  shapes: {', '.join(sections) or 'none'}; error bodies by status: {errors}\n")
    out.write(
        f"  finish reasons: {', '.join(data['finish_reasons']) or 'none'}; "
        f"models: {', '.join(data['models']) or 'none'}\n"
    )
    out.write("review it and commit it; probes now report drift from it\n")
    return 0


def _mismatch(baseline: Baseline, observed: _Observed, args: argparse.Namespace) -> str | None:
    """Why the observations cannot be compared with the baseline (None: they can)."""
    if observed.target is None:
        return (
            f"{observed.where} does not say which target it ran against ({UNKNOWN_TARGET}, "
            "written by an older chatcontract); run 'chatcontract validate' again"
        )
    if baseline.target is not None and baseline.target != observed.target:
        return (
            f"{observed.where} observed {observed.target}, but {args.baseline} was accepted "
            f"from {baseline.target}; observe that target (or accept a new baseline)"
        )
    if baseline.target is None and observed.target.simulated:
        return (
            f"{observed.where} observed the embedded simulator and {args.baseline} does not "
            "say which target it was accepted from; accept the baseline again"
        )
    return None


def run_drift(args: argparse.Namespace) -> int:
    baseline = Baseline.load(args.baseline)
    observed = _observed(args, _contract(args), baseline)
    mismatch = _mismatch(baseline, observed, args)
    if mismatch is not None:
        raise ConfigError(mismatch)
    observation, where = observed.observation, observed.where
    differences = compare(baseline.observation, observation)
    if baseline.target is None:
        sys.stderr.write(
            f"note: {args.baseline} does not say which target it was accepted from (an older "
            "chatcontract); accept it again to record it\n"
        )
    if args.format == "json":
        json.dump(
            redact_value(
                {
                    "baseline": args.baseline,
                    "baseline_accepted_at": baseline.accepted_at,
                    "baseline_target": None if baseline.target is None else baseline.target.key,
                    "observed_from": where,
                    "target": None if observed.target is None else observed.target.key,
                    "observations": observation.samples,
                    "drift": bool(differences),
                    "differences": [difference.to_dict() for difference in differences],
                }
            ),
            sys.stdout,
            indent=2,
        )
        write_out("\n")
    elif differences:
        write_out(
            f"drift: {len(differences)} difference(s) between {args.baseline} "
            f"(accepted {baseline.accepted_at}) and {where}\n"
        )
        width = max(len(difference.kind) for difference in differences)
        for difference in differences:
            write_out(f"  {difference.kind:<{width}}  {difference.detail}\n")
    else:
        write_out(f"no drift: {observation.samples} responses from {where} match {args.baseline}\n")
    return 1 if differences else 0
