"""The run record: what ``chatcontract validate`` leaves in ``last-validate.json``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatcontract.errors import ConfigError
from chatcontract.identity import TargetIdentity
from chatcontract.transport import Exchange

from .baseline import _read_json
from .observation import MADE_UP_MODELS, Observation, observe

#: Where ``chatcontract validate`` leaves its report and observation for ``baseline accept``.
LAST_VALIDATE_PATH = ".chatcontract/last-validate.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidateRecord:
    """A ``last-validate.json``: the report, the shapes observed, the target and the verdict.

    ``target`` is None for a record written by an older chatcontract that did not say which
    endpoint it ran against: it matches no target.
    """

    report: Mapping[str, Any]
    observation: Observation
    target: TargetIdentity | None
    verdict: str | None


def write_last_validate(
    report: Mapping[str, Any],
    observation: Observation,
    path: str | Path = LAST_VALIDATE_PATH,
    *,
    target: TargetIdentity | None = None,
    validated: Mapping[str, Any] | None = None,
) -> Path:
    """Write the run record for ``baseline accept``, ``drift``, ``review`` and the probe store.

    ``{"report", "observed", "target", "verdict", "validated"}``; ``target`` defaults to the
    report's own ``target`` object; ``validated`` is what a passing run proved, for
    ``chatcontract review`` (``ops.review.validated_facts``). Creates the parent directory.
    Returns the path written.
    """
    identity = target or TargetIdentity.from_dict(report.get("target"))
    verdict = report.get("verdict")
    target_path = Path(path)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "report": dict(report),
        "observed": observation.without_models(MADE_UP_MODELS).to_dict(),
        "target": None if identity is None else identity.to_dict(),
        "verdict": verdict if isinstance(verdict, str) else None,
    }
    if validated is not None:
        document["validated"] = dict(validated)
    tmp = target_path.with_name(target_path.name + ".tmp")
    try:
        tmp.write_text(
            json.dumps(document, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
        )
        tmp.replace(target_path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written record behind
        raise
    return target_path


def record_validate_run(
    report: Mapping[str, Any],
    exchanges: Iterable[Exchange],
    path: str | Path = LAST_VALIDATE_PATH,
    *,
    validated: Mapping[str, Any] | None = None,
) -> Path:
    """What ``chatcontract validate`` records after a run: report, shapes, target, verdict.

    The target comes from the report's ``target`` object (``base_url``, ``simulated``,
    ``model``); only responses to requests for that model count as seen models.
    """
    identity = TargetIdentity.from_dict(report.get("target"))
    models = None if identity is None else {identity.model}
    return write_last_validate(
        report,
        observe(exchanges, requested_models=models),
        path,
        target=identity,
        validated=validated,
    )


def read_validate_record(path: str | Path = LAST_VALIDATE_PATH) -> ValidateRecord:
    """The run record in a ``last-validate.json``; ``ConfigError`` if unusable."""
    data = _read_json(
        path,
        missing=(
            f"{path}: no validate run recorded; run 'chatcontract validate' first "
            "(or use --from probe)"
        ),
    )
    if not isinstance(data, Mapping) or not isinstance(data.get("report"), Mapping):
        raise ConfigError(f"{path}: expected an object with 'report' and 'observed'")
    report = dict(data["report"])
    observation = Observation.from_dict(data.get("observed"), where=f"{path}: observed")
    verdict = data.get("verdict", report.get("verdict"))
    return ValidateRecord(
        report=report,
        observation=observation.without_models(MADE_UP_MODELS),
        # Only a record that names its target has one: an older record stays unknown.
        target=TargetIdentity.from_dict(data.get("target")),
        verdict=verdict if verdict in ("pass", "fail") else None,
    )


def read_last_validate(
    path: str | Path = LAST_VALIDATE_PATH,
) -> tuple[dict[str, Any], Observation]:
    """``(report, observation)`` from a ``last-validate.json``; ``ConfigError`` if unusable."""
    record = read_validate_record(path)
    return dict(record.report), record.observation
