"""What every value a call builds must be (a frozen, keyword-only ``msgspec.Struct``): the
checks shared by ``tests/wire/test_wire_values.py`` and ``tests/test_values_api.py``."""

from __future__ import annotations

import pickle
from typing import Any

import msgspec
import pytest
from msgspec.structs import replace


def check_value(value: Any) -> None:
    """``value`` refuses a field assignment and positional arguments, is rebuilt equal from its
    fields by keyword, copies with ``msgspec.structs.replace`` and pickles to an equal value."""
    cls = type(value)
    assert isinstance(value, msgspec.Struct)
    fields = cls.__struct_fields__
    with pytest.raises(AttributeError, match="immutable"):
        setattr(value, fields[0], getattr(value, fields[0]))
    with pytest.raises(TypeError, match="positional"):
        cls(*(getattr(value, field) for field in fields))
    assert cls(**{field: getattr(value, field) for field in fields}) == value
    same = replace(value, **{fields[-1]: getattr(value, fields[-1])})
    assert same == value and same is not value and repr(same) == repr(value)
    assert pickle.loads(pickle.dumps(value)) == value
