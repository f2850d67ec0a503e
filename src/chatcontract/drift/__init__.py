"""Drift detection: what the provider sends, compared with an accepted baseline.

Modules: ``shapes`` (one response's shape sample), ``observation`` (samples summed up),
``compare`` (differences), ``baseline`` (the accepted file) and ``record`` (the validate run
record); every public name is re-exported here.

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

from .baseline import BASELINE_FORMAT, DEFAULT_BASELINE_PATH, Baseline
from .compare import DRIFT_KINDS, Difference, DriftKind, compare
from .observation import MADE_UP_MODELS, Observation, ShapeSet, observe, observe_samples
from .record import (
    LAST_VALIDATE_PATH,
    ValidateRecord,
    read_last_validate,
    read_validate_record,
    record_validate_run,
    write_last_validate,
)
from .shapes import ShapeSample, response_shape, sample_of

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
