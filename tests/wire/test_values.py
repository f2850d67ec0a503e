"""positional_builder: the fast constructor gives the same value as the dataclass one."""

import pickle
from dataclasses import dataclass, replace

import pytest

from chatcontract.contract import Timeouts
from chatcontract.wire import Usage
from chatcontract.wire._values import draft_class, positional_builder


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


def test_a_class_with_slots_that_is_not_a_dataclass_is_refused():
    class Slotted:
        __slots__ = ("a",)

    with pytest.raises(TypeError, match="Slotted is not a slotted dataclass"):
        positional_builder(Slotted)


@pytest.mark.parametrize("count", [0, 3, 5], ids=["none", "one-short", "one-over"])
def test_a_wrong_number_of_values_is_refused_with_both_counts(count):
    with pytest.raises(TypeError, match=f"Usage takes 4 values, got {count}"):
        positional_builder(Usage)(*range(count))


def test_the_builder_is_named_and_documented_for_its_class():
    build = positional_builder(Usage)
    assert build.__name__ == build.__qualname__ == "build_Usage"
    assert build.__doc__ == "Build a Usage from its 4 fields in order (no checks)."


def test_every_field_is_stored_in_order():
    built = positional_builder(Usage)("p", "c", "t", "d")
    assert (built.prompt_tokens, built.completion_tokens, built.total_tokens, built.details) == (
        "p",
        "c",
        "t",
        "d",
    )


def test_built_values_are_of_the_class_itself_and_behave_like_constructed_ones():
    built = positional_builder(Usage)(1, 2, 3, {})
    made = Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3, details={})
    assert type(built) is Usage
    assert built == made and repr(built) == repr(made)
    assert replace(built, total_tokens=4) == replace(made, total_tokens=4)
    assert pickle.loads(pickle.dumps(built)) == made


def _subclass(base_field: str) -> type:
    base = dataclass(frozen=True, slots=True)(
        type("Base", (), {"__annotations__": {base_field: int}})
    )
    return dataclass(frozen=True, slots=True)(
        type("Child", (base,), {"__annotations__": {"b": int}})
    )


# The draft's slots are (base field, "b"), the class's ("b",): compared either way round.
@pytest.mark.parametrize("base_field", ["a", "z"], ids=["sorts-before", "sorts-after"])
def test_a_subclass_whose_slots_are_not_all_its_fields_is_refused(base_field):
    with pytest.raises(TypeError, match="Child's slots are not its fields in order"):
        positional_builder(_subclass(base_field))


def test_a_class_with_a_base_of_its_own_is_refused_even_when_its_slots_match():
    class Mixin:  # no slots: instances would have a __dict__ the draft has not
        pass

    @dataclass(frozen=True, slots=True)
    class Mixed(Mixin):
        a: int

    assert Mixed.__slots__ == ("a",)
    with pytest.raises(TypeError, match="Mixed's slots are not its fields in order"):
        positional_builder(Mixed)


def test_a_class_with_a_weakref_slot_is_refused():
    @dataclass(frozen=True, slots=True, weakref_slot=True)
    class Weak:
        a: int

    with pytest.raises(TypeError, match="Weak's slots are not its fields in order"):
        positional_builder(Weak)


@pytest.mark.parametrize("slots", [("a", "b"), ("b", "a")], ids=["ab", "ba"])
def test_hand_written_slots_in_another_order_than_the_fields_are_refused(slots):
    annotations = dict.fromkeys(reversed(slots), int)  # the fields in the other order
    cls = dataclass(frozen=True)(
        type("Reordered", (), {"__slots__": slots, "__annotations__": annotations})
    )
    with pytest.raises(TypeError, match="Reordered's slots are not its fields in order"):
        positional_builder(cls)


def test_a_draft_given_its_class_equals_the_keyword_constructor():
    draft = draft_class(Usage)
    built = draft(1, 2, 3, {"x": 1})
    assert type(built) is not Usage
    built.__class__ = Usage
    made = Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3, details={"x": 1})
    assert type(built) is Usage
    assert built == made and repr(built) == repr(made)
    with pytest.raises(AttributeError):
        built.total_tokens = 4  # type: ignore[misc]


def test_the_draft_class_is_named_for_its_class_and_has_its_slots():
    draft = draft_class(Usage)
    assert draft.__name__ == "UsageDraft"
    assert draft.__slots__ == Usage.__slots__


@pytest.mark.parametrize(
    ("cls", "message"),
    [(Timeouts, "__post_init__"), (dataclass(frozen=True)(type("Plain", (), {})), "slotted")],
    ids=["validating", "not-slotted"],
)
def test_draft_class_refuses_what_the_builder_refuses(cls, message):
    with pytest.raises(TypeError, match=message):
        draft_class(cls)
