"""The timeout budget a request's Exchange records: the largest of its timeouts, in ms."""

import pytest

from chatcontract.transport import observer
from chatcontract.transport.observer import _budget_ms


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        ({"connect": 5.0, "read": 600.0, "write": 600.0, "pool": 600.0}, 600_000.0),
        ({"connect": 2, "read": 30}, 30_000.0),
        ({"connect": None, "read": None}, None),
        ({"connect": 1.5, "read": None, "write": "soon"}, 1_500.0),
        ({"connect": [1.0], "read": 2.0}, 2_000.0),  # an unhashable value: not remembered
    ],
    ids=["sdk", "ints", "none", "mixed", "unhashable"],
)
def test_the_budget_is_the_largest_timeout_in_ms(timeout, expected):
    assert _budget_ms(timeout) == expected
    assert _budget_ms(dict(timeout)) == expected  # again: from the memo where one is kept


def test_timeouts_that_never_repeat_are_each_read_and_the_memo_stays_bounded(monkeypatch):
    monkeypatch.setattr(observer, "_BUDGETS", {})
    for step in range(300):  # the gateway's: the time left of each call's deadline
        left = 10.0 - step / 1000
        timeout = {"connect": 5.0, "read": 2.0, "write": left, "pool": left}
        assert _budget_ms(timeout) == pytest.approx(left * 1000.0)
    assert len(observer._BUDGETS) == 256


def test_a_remembered_budget_of_none_is_returned_as_none(monkeypatch):
    monkeypatch.setattr(observer, "_BUDGETS", {})
    assert _budget_ms({"connect": None}) is None
    assert observer._BUDGETS == {(None,): None}
    assert _budget_ms({"connect": None}) is None
