"""Observations: the shapes, finish reasons and models seen in a set of responses."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chatcontract.errors import ConfigError
from chatcontract.transport import Exchange

from .shapes import (
    _ERROR,
    _RESPONSE,
    _STREAM,
    _USAGE,
    ShapeSample,
    _error_order,
    _ordered,
    _sections,
    sample_of,
)

#: Model names the negative checks make up (``unsupported_model``): a server that answers them
#: is a defect, never a model to accept, so they are never recorded as seen models.
MADE_UP_MODELS: frozenset[str] = frozenset({"chatcontract-no-such-model-0"})


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
