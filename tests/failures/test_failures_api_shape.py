"""Options of the public classification functions are keyword-only, as documented."""

import dataclasses
import inspect

import pytest

from chatcontract.failures import (
    CATEGORY_TABLE,
    classify,
    classify_error_body,
    classify_exception,
    classify_response,
    classify_stream,
    decision_for,
    make_failure,
    semantic_failure,
)

KEYWORD_ONLY = [
    (classify, "contract"),
    (classify_error_body, "contract"),
    (classify_response, "contract"),
    (classify_stream, "status"),
    (semantic_failure, "contract"),
    (decision_for, "retryable"),
    (make_failure, "kind"),
    (classify_exception, "secrets"),
]


@pytest.mark.parametrize(
    ("function", "name"), KEYWORD_ONLY, ids=[f.__name__ for f, _ in KEYWORD_ONLY]
)
def test_options_are_keyword_only(function, name):
    parameter = inspect.signature(function).parameters[name]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY


VALUES = [
    lambda: make_failure(kind="http", category="auth", code="x", message="m"),
    lambda: CATEGORY_TABLE["auth"],
]


@pytest.mark.parametrize("build", VALUES, ids=["Failure", "CategoryInfo"])
def test_values_are_frozen_slotted_and_keyword_only(build):
    value = build()
    assert not hasattr(value, "__dict__")
    field = next(iter(dataclasses.fields(value)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field.name, None)
    positional = [getattr(value, f.name) for f in dataclasses.fields(value)]
    with pytest.raises(TypeError):
        type(value)(*positional)
