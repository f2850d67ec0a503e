"""A faster constructor for the frozen value objects built on hot paths.

A frozen dataclass's generated ``__init__`` stores each field through
``object.__setattr__`` (about 0.15 µs per field on a slow core), and storing through the slot
descriptors one call at a time is not much cheaper; the observer and the parser build some 60
fields per call, so that alone cost as much as decoding the JSON.

The builder makes each value as a *draft*: an instance of a plain (not frozen) slotted
dataclass with the same fields in the same order, whose ``__init__`` stores them with
ordinary attribute stores (the interpreter's fastest), then gives it its real class by
``__class__`` assignment, which Python allows between classes with the same slots and base.
What the caller gets is an ordinary instance of the frozen, slotted, keyword-only dataclass
(``type(value) is cls``, equal to the one its constructor builds): the draft class never
leaves the module that builds. Plain code, no generated source of ours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass, make_dataclass
from typing import Any, TypeVar

__all__ = ["draft_class", "positional_builder"]

T = TypeVar("T")


def draft_class(cls: type[Any]) -> Any:
    """Return the draft class of ``cls``: ``draft(*values)`` in field order, then
    ``value.__class__ = cls``, makes a ``cls``.

    Written out at a call site, the two steps spare the call of :func:`positional_builder`'s
    ``build`` (the hottest values are built so). Only for frozen slotted dataclasses without
    ``__post_init__``: the caller has already validated the values. Raises ``TypeError`` for
    any other class.
    """
    if not is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    if getattr(cls, "__post_init__", None) is not None:
        raise TypeError(f"{cls.__name__} validates in __post_init__; use its constructor")
    names = [item.name for item in fields(cls)]
    draft: Any = make_dataclass(f"{cls.__name__}Draft", names, slots=True)
    if draft.__slots__ != cls.__dict__["__slots__"] or cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__}'s slots are not its fields in order")
    return draft


def positional_builder(cls: type[T]) -> Callable[..., T]:
    """Return ``build(*values)`` creating a ``cls`` from values in field order.

    Only for frozen slotted dataclasses without ``__post_init__``: the caller (the parser)
    has already validated the values. Raises ``TypeError`` for any other class.
    """
    draft = draft_class(cls)
    count = len(draft.__slots__)

    def build(*values: Any) -> T:
        if len(values) != count:
            raise TypeError(f"{cls.__name__} takes {count} values, got {len(values)}")
        obj = draft(*values)
        obj.__class__ = cls
        return obj  # type: ignore[no-any-return]

    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    build.__doc__ = f"Build a {cls.__name__} from its {count} fields in order (no checks)."
    return build
