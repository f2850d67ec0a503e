"""positional_builder: the fast constructor gives the same value as the dataclass one."""

from dataclasses import dataclass

import pytest

from chatcontract.contract import Timeouts
from chatcontract.wire import Usage
from chatcontract.wire._values import positional_builder


def test_builder_equals_the_keyword_constructor():
    build = positional_builder(Usage)
    built = build(1, 2, 3, {"x": 1})
    assert built == Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3, details={"x": 1})
    assert type(built) is Usage


def test_built_values_stay_frozen():
    built = positional_builder(Usage)(1, 2, 3, {})
    with pytest.raises(AttributeError):
        built.total_tokens = 4  # type: ignore[misc]


def test_classes_that_validate_are_refused():
    with pytest.raises(TypeError, match="__post_init__"):
        positional_builder(Timeouts)


def test_classes_without_slots_are_refused():
    @dataclass(frozen=True)
    class Plain:
        a: int

    with pytest.raises(TypeError, match="slotted"):
        positional_builder(Plain)


def test_a_wrong_number_of_values_is_refused():
    with pytest.raises(TypeError):
        positional_builder(Usage)(1, 2)
