"""Drift detection: what the provider sends, compared with an accepted baseline.

An :class:`Observation` summarises the shapes seen in a set of calls, by section:

- ``response``: the body of a non-streaming 2xx completion (without its ``usage`` subtree),
- ``stream``: the union of a stream's chunk shapes (without ``usage``),
- ``usage``: the ``usage`` object's shape, wherever it came from,
- ``error:<status>``: the error body per HTTP status (``$:empty`` / ``$:non_json`` for bodies
  that are not JSON),

plus the ``finish_reason`` values and the response model names seen. For each section it keeps
every path seen and the paths present in *every* sample, so an optional field that comes and
goes is not reported as missing.

A :class:`Baseline` is an accepted observation, written to ``chatcontract.baseline.json``
(sorted, reviewable in git, no values, no secrets). :func:`compare` lists the
:class:`Difference` values between a baseline and a newer observation; each has a ``kind``
(``new_field``, ``missing_field``, ``new_finish_reason``, ``usage_shape``, ``error_shape``,
``new_model``) and a stable ``key`` used to deduplicate drift events.

Example::

    observation = observe(exchanges)              # validate calls this on its exchanges
    baseline = Baseline.accept(observation, source="validate")
    baseline.save("chatcontract.baseline.json")
    for difference in compare(baseline.observation, observe([exchange])):
        print(difference.kind, difference.detail)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chatcontract.errors import ConfigError
from chatcontract.exchange import Exchange
from chatcontract.identity import TargetIdentity

__all__ = [
    "BASELINE_FORMAT",
    "DEFAULT_BASELINE_PATH",
    "DRIFT_KINDS",
    "LAST_VALIDATE_PATH",
    "MADE_UP_MODELS",
    "Baseline",
    "Difference",
    "DriftKind",
    "Observation",
    "ShapeSample",
    "ShapeSet",
    "ValidateRecord",
    "compare",
    "observe",
    "observe_samples",
    "read_last_validate",
    "read_validate_record",
    "record_validate_run",
    "response_shape",
    "sample_of",
    "write_last_validate",
]

DriftKind = Literal[
    "new_field", "missing_field", "new_finish_reason", "usage_shape", "error_shape", "new_model"
]

#: Every drift kind, the values of the ``kind`` label of ``llm_contract_drift_total``.
DRIFT_KINDS: tuple[DriftKind, ...] = (
    "new_field",
    "missing_field",
    "new_finish_reason",
    "usage_shape",
    "error_shape",
    "new_model",
)

DEFAULT_BASELINE_PATH = "chatcontract.baseline.json"
#: Where ``chatcontract validate`` leaves its report and observation for ``baseline accept``.
LAST_VALIDATE_PATH = ".chatcontract/last-validate.json"
#: The value of the ``chatcontract_baseline`` key: the file format version.
BASELINE_FORMAT = 1
#: Model names the negative checks make up (``unsupported_model``): a server that answers them
#: is a defect, never a model to accept, so they are never recorded as seen models.
MADE_UP_MODELS: frozenset[str] = frozenset({"chatcontract-no-such-model-0"})

#: Shapes of bodies that are not JSON (they have no paths of their own).
EMPTY_BODY = "$:empty"
NON_JSON_BODY = "$:non_json"

_RESPONSE, _STREAM, _USAGE, _ERROR = "response", "stream", "usage", "error:"
_SECTION_NAMES = {_RESPONSE: "response", _STREAM: "stream chunk", _USAGE: "usage"}
_USAGE_OBJECT = "usage:object"


# -- samples ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapeSample:
    """The value-free facts of one response that drift detection compares.

    ``paths`` are the body's shape entries (``choices[].message.content:string``), the union
    of the chunk shapes for a stream, or ``$:empty`` / ``$:non_json`` for a body without JSON.
    """

    status: int
    stream: bool
    paths: tuple[str, ...]
    finish_reason: str | None = None
    model: str | None = None
    in_band_error: bool = False


def response_shape(exchange: Exchange) -> tuple[str, ...]:
    """The shape entries of an exchange's response (``()`` when there was no response)."""
    response = exchange.response
    if response is None:
        return ()
    paths = tuple(getattr(response, "shape_paths", ()) or ())
    if paths:
        return paths
    if response.stream_verdict is not None:
        return ()  # a stream without a decodable chunk: the classifier already says why
    return (EMPTY_BODY,) if response.body_bytes == 0 else (NON_JSON_BODY,)


def sample_of(exchange: Exchange) -> ShapeSample | None:
    """The :class:`ShapeSample` of an exchange, or None when no response came back."""
    response = exchange.response
    if response is None:
        return None
    failure = exchange.failure
    success_status = 200 <= response.status < 300
    return ShapeSample(
        status=response.status,
        stream=response.stream_verdict is not None,
        paths=response_shape(exchange),
        finish_reason=response.finish_reason,
        model=response.model,
        in_band_error=success_status and failure is not None and failure.kind == "api_error",
    )


def _path_of(entry: str) -> str:
    return entry.rpartition(":")[0]


def _is_usage(entry: str) -> bool:
    path = _path_of(entry)
    return path == "usage" or path.startswith(("usage.", "usage["))


def _sections(sample: ShapeSample) -> dict[str, tuple[str, ...]]:
    """The sections a sample contributes to, with the entries of each."""
    if not sample.paths:
        return {}
    if sample.in_band_error or not 200 <= sample.status < 300:
        return {f"{_ERROR}{sample.status}": sample.paths}
    body = tuple(entry for entry in sample.paths if not _is_usage(entry))
    sections = {(_STREAM if sample.stream else _RESPONSE): body}
    if _USAGE_OBJECT in sample.paths:  # ``usage: null`` chunks say nothing about its shape
        sections[_USAGE] = tuple(
            entry for entry in sample.paths if _is_usage(entry) and entry != "usage:null"
        )
    return sections


# -- observation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapeSet:
    """The entries of one section: every one seen, and those seen in every sample."""

    samples: int
    seen: frozenset[str]
    always: frozenset[str]

    def merge(self, entries: Iterable[str]) -> ShapeSet:
        found = frozenset(entries)
        if self.samples == 0:
            return ShapeSet(samples=1, seen=found, always=found)
        return ShapeSet(
            samples=self.samples + 1, seen=self.seen | found, always=self.always & found
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "paths": _ordered(self.seen),
            "optional": _ordered(self.seen - self.always),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ShapeSet:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected an object with samples, paths, optional")
        samples = data.get("samples")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ConfigError(f"{where}.samples: expected a whole number >= 1")
        seen = frozenset(_strings(data.get("paths"), f"{where}.paths"))
        optional = frozenset(_strings(data.get("optional", []), f"{where}.optional"))
        if not optional <= seen:
            raise ConfigError(f"{where}.optional: every optional path must be listed in paths")
        return cls(samples=samples, seen=seen, always=seen - optional)


_EMPTY_SET = ShapeSet(samples=0, seen=frozenset(), always=frozenset())


def _ordered(entries: Iterable[str]) -> list[str]:
    """Parents right before their children (the order of ``wire.shape_paths``)."""
    return sorted(entries, key=lambda entry: entry.rpartition(":")[::2])


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return list(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """The shapes, finish reasons and models seen in a set of responses.

    Build one with :func:`observe` (from Exchanges) or :func:`observe_samples`; serialise it
    with :meth:`to_dict` / :meth:`from_dict` (the ``observed`` key of ``last-validate.json``).
    """

    samples: int = 0
    sections: Mapping[str, ShapeSet] = field(default_factory=dict)
    finish_reasons: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()

    def section(self, name: str) -> ShapeSet:
        return self.sections.get(name, _EMPTY_SET)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, every list sorted, so two equal observations serialise identically."""
        error_names = sorted((n for n in self.sections if n.startswith(_ERROR)), key=_error_order)
        errors = {name[len(_ERROR) :]: self.sections[name].to_dict() for name in error_names}
        return {
            "samples": self.samples,
            "response": _optional_dict(self.sections.get(_RESPONSE)),
            "stream_chunks": _optional_dict(self.sections.get(_STREAM)),
            "usage": _optional_dict(self.sections.get(_USAGE)),
            "error_bodies": errors,
            "finish_reasons": sorted(self.finish_reasons),
            "models": sorted(self.models),
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "observation") -> Observation:
        """Read :meth:`to_dict`'s form back; ``ConfigError`` names the bad field."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected an object")
        samples = data.get("samples", 0)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
            raise ConfigError(f"{where}.samples: expected a whole number >= 0")
        sections: dict[str, ShapeSet] = {}
        for key, name in (("response", _RESPONSE), ("stream_chunks", _STREAM), ("usage", _USAGE)):
            value = data.get(key)
            if value is not None:
                sections[name] = ShapeSet.from_dict(value, f"{where}.{key}")
        errors = data.get("error_bodies", {})
        if not isinstance(errors, Mapping):
            raise ConfigError(f"{where}.error_bodies: expected an object keyed by HTTP status")
        for status, value in errors.items():
            if not (isinstance(status, str) and status.isdigit() and 100 <= int(status) <= 599):
                raise ConfigError(f"{where}.error_bodies: {status!r} is not an HTTP status")
            sections[f"{_ERROR}{int(status)}"] = ShapeSet.from_dict(
                value, f"{where}.error_bodies.{status}"
            )
        return cls(
            samples=samples,
            sections=sections,
            finish_reasons=frozenset(
                _strings(data.get("finish_reasons", []), f"{where}.finish_reasons")
            ),
            models=frozenset(_strings(data.get("models", []), f"{where}.models")),
        )

    def without_models(self, models: Collection[str]) -> Observation:
        """This observation without the given response model names."""
        return dataclasses.replace(self, models=self.models - frozenset(models))

    def digest(self) -> str:
        """16 hex digits identifying this observation's content."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _optional_dict(shapes: ShapeSet | None) -> dict[str, Any] | None:
    return None if shapes is None else shapes.to_dict()


def _error_order(name: str) -> tuple[int, str]:
    suffix = name[len(_ERROR) :]
    return (int(suffix) if suffix.isdigit() else 0, name)


def observe_samples(samples: Iterable[ShapeSample | None]) -> Observation:
    """The :class:`Observation` of shape samples (``None`` entries are skipped)."""
    count = 0
    sections: dict[str, ShapeSet] = {}
    reasons: set[str] = set()
    models: set[str] = set()
    for sample in samples:
        if sample is None:
            continue
        count += 1
        for name, entries in _sections(sample).items():
            sections[name] = sections.get(name, _EMPTY_SET).merge(entries)
        if 200 <= sample.status < 300 and not sample.in_band_error:
            if sample.finish_reason:
                reasons.add(sample.finish_reason)
            if sample.model:
                models.add(sample.model)
    return Observation(
        samples=count,
        sections=sections,
        finish_reasons=frozenset(reasons),
        models=frozenset(models),
    )


def observe(
    exchanges: Iterable[Exchange], *, requested_models: Collection[str] | None = None
) -> Observation:
    """The :class:`Observation` of Exchanges: shapes, finish reasons and models seen.

    Calls without a response (transport failures) are skipped; values never enter it. With
    ``requested_models``, a response model is recorded only when its request asked for one of
    them (a negative check's made-up model is answered, if at all, by a defect, not a model).
    """

    def unwanted(asked: str | None, answered: str) -> bool:
        return (
            asked in MADE_UP_MODELS
            or answered in MADE_UP_MODELS
            or (requested_models is not None and asked not in requested_models)
        )

    def sample(exchange: Exchange) -> ShapeSample | None:
        found = sample_of(exchange)
        if found is not None and found.model and unwanted(exchange.request.model, found.model):
            return dataclasses.replace(found, model=None)
        return found

    return observe_samples(sample(exchange) for exchange in exchanges)


# -- comparison -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One way an observation departs from the baseline."""

    kind: DriftKind
    section: str
    detail: str

    @property
    def key(self) -> str:
        """Stable identity: the same difference seen twice has the same key."""
        return f"{self.kind}|{self.section}|{self.detail}"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "section": self.section, "detail": self.detail}


def _topmost(entries: Iterable[str]) -> list[str]:
    """Drop entries whose parent path is also listed: a new object is one change, not many."""
    listed = {_path_of(entry) for entry in entries}
    kept = []
    for entry in entries:
        path = _path_of(entry)
        parents = {path[:i] for i, char in enumerate(path) if char in ".[" and i > 0}
        if not parents & listed:
            kept.append(entry)
    return _ordered(kept)


def _section_label(name: str) -> str:
    if name.startswith(_ERROR):
        return f"error body HTTP {name[len(_ERROR) :]}"
    return _SECTION_NAMES.get(name, name)


def _shape_kind(name: str, added: bool) -> DriftKind:
    if name == _USAGE:
        return "usage_shape"
    if name.startswith(_ERROR):
        return "error_shape"
    return "new_field" if added else "missing_field"


def compare(baseline: Observation, observed: Observation) -> list[Difference]:
    """The differences between ``baseline`` and ``observed``, in a stable order.

    Per section present on both sides: entries never seen in the baseline are added; entries
    the baseline saw in every sample but ``observed`` lacks in some sample are missing. A
    section the baseline never saw (e.g. no stream) is not compared. Then each finish_reason
    and response model the baseline did not see.
    """
    differences: list[Difference] = []
    for name in sorted(observed.sections, key=_section_sort):
        mine = baseline.sections.get(name)
        theirs = observed.sections[name]
        if mine is None or theirs.samples == 0:
            continue
        label = _section_label(name)
        differences.extend(
            Difference(kind=_shape_kind(name, True), section=name, detail=f"{label}: +{entry}")
            for entry in _topmost(sorted(theirs.seen - mine.seen))
        )
        differences.extend(
            Difference(kind=_shape_kind(name, False), section=name, detail=f"{label}: -{entry}")
            for entry in _topmost(sorted(mine.always - theirs.always))
        )
    differences.extend(
        Difference(
            kind="new_finish_reason", section="finish_reason", detail=f"finish_reason: {reason}"
        )
        for reason in sorted(observed.finish_reasons - baseline.finish_reasons)
    )
    differences.extend(
        Difference(kind="new_model", section="model", detail=f"model: {model}")
        for model in sorted(observed.models - baseline.models)
    )
    return differences


def _section_sort(name: str) -> tuple[int, int, str]:
    order = {_RESPONSE: 0, _STREAM: 1, _USAGE: 2}
    if name in order:
        return (order[name], 0, name)
    return (3, *_error_order(name))


# -- baseline file ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """An accepted :class:`Observation` with where, when and from which run it was accepted.

    ``target`` is the endpoint the observation came from (None: accepted by an older
    chatcontract), ``verdict`` the accepted run's (``pass``/``fail``; None when unknown) and
    ``forced`` whether ``--force`` overrode a refusal (a failed or simulated run).
    """

    observation: Observation
    source: str
    accepted_at: str
    contract_name: str | None = None
    provider: str | None = None
    target: TargetIdentity | None = None
    verdict: str | None = None
    forced: bool = False

    @classmethod
    def accept(
        cls,
        observation: Observation,
        *,
        source: str,
        contract_name: str | None = None,
        provider: str | None = None,
        target: TargetIdentity | None = None,
        verdict: str | None = None,
        forced: bool = False,
        now: dt.datetime | None = None,
    ) -> Baseline:
        """A baseline accepting ``observation`` now (never with a made-up model name)."""
        when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        return cls(
            observation=observation.without_models(MADE_UP_MODELS),
            source=source,
            accepted_at=when.isoformat(timespec="seconds"),
            contract_name=contract_name,
            provider=provider,
            target=target,
            verdict=verdict,
            forced=forced,
        )

    @property
    def digest(self) -> str:
        """Identifies the accepted shapes (drift events are deduplicated per baseline)."""
        return self.observation.digest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "chatcontract_baseline": BASELINE_FORMAT,
            "accepted_at": self.accepted_at,
            "source": self.source,
            "contract": {"name": self.contract_name, "provider": self.provider},
            "target": None if self.target is None else self.target.to_dict(),
            "verdict": self.verdict,
            "forced": self.forced,
            "digest": self.digest,
            "observed": self.observation.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "baseline") -> Baseline:
        if not isinstance(data, Mapping) or data.get("chatcontract_baseline") != BASELINE_FORMAT:
            raise ConfigError(
                f"{where}: not a chatcontract baseline (format {BASELINE_FORMAT}); "
                "write one with 'chatcontract baseline accept'"
            )
        contract = data.get("contract") or {}
        if not isinstance(contract, Mapping):
            raise ConfigError(f"{where}.contract: expected an object")
        source, accepted_at = data.get("source"), data.get("accepted_at")
        if not isinstance(source, str) or not isinstance(accepted_at, str):
            raise ConfigError(f"{where}: source and accepted_at must be text")
        name, provider = contract.get("name"), contract.get("provider")
        verdict = data.get("verdict")
        return cls(
            observation=Observation.from_dict(
                data.get("observed"), where=f"{where}.observed"
            ).without_models(MADE_UP_MODELS),
            source=source,
            accepted_at=accepted_at,
            contract_name=name if isinstance(name, str) else None,
            provider=provider if isinstance(provider, str) else None,
            target=TargetIdentity.from_dict(data.get("target")),
            verdict=verdict if isinstance(verdict, str) else None,
            forced=data.get("forced") is True,
        )

    def save(self, path: str | Path) -> None:
        """Write the baseline as sorted, indented JSON (stable diffs in git)."""
        target = Path(path)
        if not target.parent.exists():
            raise ConfigError(f"{path}: the directory {target.parent} does not exist")
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read a baseline file; ``ConfigError`` when it is missing or malformed."""
        return cls.from_dict(
            _read_json(
                path,
                missing=(f"{path}: no baseline; record one with 'chatcontract baseline accept'"),
            ),
            where=str(path),
        )


def _read_json(path: str | Path, *, missing: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(missing) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from exc


# -- last validate run ------------------------------------------------------------------------


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
