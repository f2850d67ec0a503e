"""A faster constructor for the frozen value objects built on hot paths.

A frozen dataclass's generated ``__init__`` stores each field through
``object.__setattr__`` (about 0.15 µs per field on a slow core); the parser builds a
``Completion`` and friends for every body and stream, so that alone cost as much as decoding
the JSON. Storing through the slot descriptors is two to three times faster and keeps the
classes ordinary frozen, slotted, keyword-only dataclasses for everyone else.

The builder binds the class's slot setters once and stores the values through them: plain
code, no generated source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass
from itertools import repeat
from operator import call
from typing import Any, TypeVar

__all__ = ["positional_builder"]

T = TypeVar("T")


def positional_builder(cls: type[T]) -> Callable[..., T]:
    """Return ``build(*values)`` creating a ``cls`` from values in field order.

    Only for frozen slotted dataclasses without ``__post_init__``: the caller (the parser)
    has already validated the values. Raises ``TypeError`` for any other class.
    """
    if not is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    if getattr(cls, "__post_init__", None) is not None:
        raise TypeError(f"{cls.__name__} validates in __post_init__; use its constructor")
    setters = tuple(cls.__dict__[item.name].__set__ for item in fields(cls))
    new = object.__new__
    count = len(setters)

    def build(*values: Any) -> T:
        if len(values) != count:
            raise TypeError(f"{cls.__name__} takes {count} values, got {len(values)}")
        obj: T = new(cls)
        # Each setter returns None: ``any`` runs them all, the loop in C (a Python ``for``
        # costs more than the stores themselves).
        any(map(call, setters, repeat(obj), values))
        return obj

    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    build.__doc__ = f"Build a {cls.__name__} from its {len(setters)} fields in order (no checks)."
    return build
