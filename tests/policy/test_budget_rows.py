"""Exact figures and boundaries of the budget guard and the prompt estimate."""

from types import MappingProxyType

import pytest

from chatcontract.contract import CostCaps, Policy, Prices
from chatcontract.policy import DAY_S, BudgetGuard, estimate_prompt_tokens, kill_switch_active
from chatcontract.wire import Usage

# $15625 per million tokens both ways: a token costs exactly 1/64 USD (binary-exact sums).
FLAT = {"flat": Prices(input_per_million=15_625.0, output_per_million=15_625.0)}
USD = 1 / 64


class FakeClock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


def guard(**caps):
    clock = FakeClock()
    return BudgetGuard(CostCaps(**caps), FLAT, clock=clock), clock


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([], 3),
        ([{"role": "user", "content": ""}], 3 + 4 + 1),  # "user" is 4 characters: one token
        ([{"role": "user", "content": "x" * 4}], 3 + 4 + 2),
        ([{"role": "user", "content": "x" * 5}], 3 + 4 + 3),  # 9 characters round up to 3
        ([{"content": [{"type": "text", "text": "y" * 8}]}], 3 + 4 + 2),  # "type" not counted
        ([{"content": ("ab", "cd")}], 3 + 4 + 1),
        ([{"content": 42, "n": None}], 3 + 4 + 0),
        ([{"role": "user"}, {"role": "user"}], 3 + 2 * (4 + 1)),
        ([{"role": "user", "content": "x" * 12}], 3 + 4 + 4),
        ([{"content": [{"type": "image_url", "image_url": {"url": "abcdefgh"}}]}], 3 + 4 + 2),
        ([{"a": 1, "b": 2, "c": 3, "d": 4, "e": None}], 3 + 4 + 0),
    ],
    ids=[
        "none",
        "empty",
        "four",
        "five",
        "parts",
        "tuple",
        "not-text",
        "two",
        "sixteen",
        "image-url",
        "five-not-text",
    ],
)
def test_prompt_estimate_exact_figures(messages, expected):
    assert estimate_prompt_tokens(messages) == expected


def test_worst_case_uses_max_tokens_the_per_call_cap_or_nothing():
    budget, _ = guard(max_tokens_per_call=500)
    assert budget.worst_case_usd("flat", 100, 50) == pytest.approx(150 * USD)
    assert budget.worst_case_usd("flat", 100, None) == pytest.approx(600 * USD)
    assert budget.worst_case_usd("unpriced", 100, 50) is None
    uncapped, _ = guard(max_tokens_per_call=None)
    assert uncapped.worst_case_usd("flat", 100, None) == pytest.approx(100 * USD)


def test_a_call_exactly_at_each_cap_is_allowed():
    budget, _ = guard(max_tokens_per_call=100, max_cost_per_call_usd=200 * USD)
    assert budget.check("flat", 100, 100) is None  # 100 tokens = cap; 200 tokens' cost = cap
    assert budget.check("flat", 10, 50) is None  # below both
    assert budget.check("flat", 101, 100) == "call_cost_cap"
    assert budget.check("unpriced", 10**9, 100) is None  # no prices: only the token cap
    daily, _ = guard(max_tokens_per_call=None, max_cost_per_day_usd=300 * USD)
    daily.record("flat", Usage(prompt_tokens=100, completion_tokens=100))
    assert daily.check("flat", 50, 50) is None  # 200 + 100 = the daily cap
    assert daily.check("flat", 51, 50) == "daily_cost_cap"


def test_no_caps_means_no_refusal():
    budget, _ = guard(
        max_tokens_per_call=None, max_cost_per_call_usd=None, max_cost_per_day_usd=None
    )
    assert budget.check("flat", 10**9, 10**9) is None


def test_record_returns_the_cost_and_counts_missing_counts_as_zero():
    budget, _ = guard()
    assert budget.record("flat", Usage(prompt_tokens=300, completion_tokens=None)) == (
        pytest.approx(300 * USD)
    )
    assert budget.record("flat", Usage(prompt_tokens=None, completion_tokens=7)) == (
        pytest.approx(7 * USD)
    )
    assert budget.record("unpriced", Usage(prompt_tokens=1, completion_tokens=1)) is None
    assert budget.spent_today() == pytest.approx(307 * USD)


def test_spend_leaves_the_window_oldest_first():
    budget, clock = guard()
    budget.record("flat", Usage(prompt_tokens=64, completion_tokens=0))
    clock.now += 10
    budget.record("flat", Usage(prompt_tokens=128, completion_tokens=0))
    clock.now += DAY_S - 10
    assert budget.spent_today() == 2.0  # the first call left, the second is 10 s younger
    clock.now += 10
    assert budget.spent_today() == 0.0


def test_spend_leaves_the_window_exactly_24_hours_later():
    budget, clock = guard()
    budget.record("flat", Usage(prompt_tokens=1_000, completion_tokens=0))
    clock.now += DAY_S - 1
    assert budget.spent_today() == pytest.approx(1_000 * USD)
    clock.now += 1
    assert budget.spent_today() == 0.0
    assert DAY_S == 86_400.0


@pytest.mark.parametrize(
    ("value", "active"),
    [(" OFF ", False), ("No", False), ("FALSE", False), ("0", False), ("", False), ("on", True)],
    ids=str,
)
def test_kill_switch_words_are_case_and_space_insensitive(value, active):
    policy = Policy(kill_switch_env="CC_KILL")
    assert kill_switch_active(policy, {"CC_KILL": value}) is active
    assert kill_switch_active(policy, {}) is False


class _Text(str):
    """A string subclass: counted as text like any string."""


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": "x" * 9},
        {"role": _Text("user"), "content": _Text("x" * 9)},
        {"role": "user", "content": [{"type": "text", "text": "x" * 9}]},
        {"role": "user", "content": ({"type": "text", "text": "xxxx"}, "xxxxx")},
        {"role": "user", "content": "x" * 9, "type": "ignored", "n": 3},
    ],
    ids=["string", "string-subclass", "part", "tuple-of-parts", "type-and-number"],
)
def test_a_dict_message_and_the_same_read_only_mapping_estimate_alike(message):
    # 4 + 9 characters of text in each: 4 tokens, plus the message's and the request's own.
    assert estimate_prompt_tokens([message]) == 3 + 4 + 4
    assert estimate_prompt_tokens([MappingProxyType(message)]) == 3 + 4 + 4
