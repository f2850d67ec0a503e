"""Options of the policy functions are keyword-only, as documented."""

import dataclasses
import inspect

import pytest

from chatcontract.policy import (
    BudgetGuard,
    Deadline,
    Decision,
    Rule,
    compute_backoff,
    decide,
    parse_retry_after,
    rule_for,
)

KEYWORD_ONLY = [
    (compute_backoff, "rng"),
    (parse_retry_after, "now"),
    (decide, "attempt"),
    (rule_for, "retryable"),
    (Deadline.__init__, "clock"),
    (BudgetGuard.__init__, "clock"),
]


@pytest.mark.parametrize(
    ("function", "name"), KEYWORD_ONLY, ids=[f.__qualname__ for f, _ in KEYWORD_ONLY]
)
def test_options_are_keyword_only(function, name):
    parameter = inspect.signature(function).parameters[name]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize(
    "value",
    [Rule(retries=1), Decision(action="fallback")],
    ids=["Rule", "Decision"],
)
def test_values_are_frozen_slotted_and_keyword_only(value):
    assert not hasattr(value, "__dict__")
    field = next(iter(dataclasses.fields(value)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field.name, None)
    positional = [getattr(value, f.name) for f in dataclasses.fields(value)]
    with pytest.raises(TypeError):
        type(value)(*positional)
