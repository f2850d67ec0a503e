"""What a failed attempt is charged at the edges, and the spend store's one-second buckets."""

import pytest

from chatcontract.contract import CostCaps, Prices
from chatcontract.policy import BudgetGuard
from chatcontract.policy.budget import MemorySpendStore
from chatcontract.wire import Usage

PRICES = {"cheap": Prices(input_per_million=1.0, output_per_million=2.0)}


def guard() -> BudgetGuard:
    return BudgetGuard(CostCaps(), PRICES, clock=lambda: 1_000.0)


@pytest.mark.parametrize(
    ("chars", "tokens"),
    [(1, 1), (4, 1), (5, 2), (401, 101)],
    ids=["one-char", "four-chars", "five-chars", "401-chars"],
)
def test_a_cut_answer_is_charged_a_whole_token_per_started_four_characters(chars, tokens):
    cost = guard().record_failed(
        "cheap", usage=None, answered=True, category="network", prompt_tokens=0,
        completion_chars=chars,
    )  # fmt: skip
    assert cost == pytest.approx(tokens * 2.0 / 1e6)


def test_a_negative_prompt_estimate_is_charged_as_zero_tokens():
    cost = guard().record_failed(
        "cheap", usage=None, answered=True, category="network", prompt_tokens=-50,
        completion_chars=400,
    )  # fmt: skip
    assert cost == pytest.approx(100 * 2.0 / 1e6)


def test_a_negative_usage_count_is_charged_as_zero_tokens():
    cost = guard().record_failed(
        "cheap", usage=Usage(prompt_tokens=1_000, completion_tokens=-5), answered=True,
        category="contract", prompt_tokens=7,
    )  # fmt: skip
    assert cost == pytest.approx(1_000 * 1.0 / 1e6)


def test_record_failed_takes_everything_but_the_model_by_keyword():
    with pytest.raises(TypeError):
        guard().record_failed("cheap", None, True, "network", 1_000)  # type: ignore[misc]


@pytest.mark.parametrize(
    "usage",
    [Usage(prompt_tokens=0, completion_tokens=0), Usage()],
    ids=["zero-counts", "no-counts"],
)
def test_a_failed_attempt_that_costs_nothing_is_not_charged(usage):
    budget = guard()
    cost = budget.record_failed(
        "cheap", usage=usage, answered=True, category="contract", prompt_tokens=1_000
    )
    assert cost is None
    assert budget.spent_today() == 0.0


def test_an_answered_failure_with_nothing_generated_is_charged_its_prompt_only():
    cost = guard().record_failed(
        "cheap", usage=None, answered=True, category="network", prompt_tokens=1_000
    )
    assert cost == pytest.approx(1_000 * 1.0 / 1e6)


def test_charges_in_the_same_second_share_its_bucket_and_expire_with_it():
    store = MemorySpendStore()
    store.add(0.5, 1.0)  # the bucket of second 1
    store.add(99.5, 2.0)  # second 100
    store.add(99.7, 4.0)  # second 100 again: the same bucket
    store.add(199.5, 8.0)  # second 200
    assert store.total_since(0.0) == 15.0
    assert store.total_since(1.0) == 14.0  # second 1 expired
    assert store.total_since(100.0) == 8.0  # both charges of second 100 expired together
    assert store.total_since(200.0) == 0.0


def test_the_spend_is_never_read_below_zero_after_rounding():
    store = MemorySpendStore()
    store.add(0.5, 0.1)
    store.add(1.5, 0.01)
    store.add(2.5, 0.0)  # a call whose usage cost nothing keeps a bucket
    # 0.1 + 0.01 - 0.1 - 0.01 is -5.2e-18 in floating point
    assert store.total_since(2.0) == 0.0
