import pytest

from chatcontract.contract import CostCaps, Policy, Prices
from chatcontract.policy import DAY_S, BudgetGuard, estimate_prompt_tokens, kill_switch_active
from chatcontract.policy.budget import UNBILLED_CATEGORIES
from chatcontract.wire import Usage

PRICES = {"cheap": Prices(input_per_million=1.0, output_per_million=2.0)}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def guard(**caps):
    clock = FakeClock()
    return BudgetGuard(CostCaps(**caps), PRICES, clock=clock), clock


def test_prompt_estimate_is_about_a_quarter_of_the_characters_plus_overhead():
    short = estimate_prompt_tokens([{"role": "user", "content": "x" * 400}])
    assert 100 <= short <= 115
    two = estimate_prompt_tokens(
        [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}]
    )
    assert two > estimate_prompt_tokens([{"role": "user", "content": "b"}])


def test_prompt_estimate_counts_content_parts_and_tool_arguments():
    parts = [{"role": "user", "content": [{"type": "text", "text": "y" * 800}]}]
    calls = [
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "z" * 800}}]}
    ]
    assert estimate_prompt_tokens(parts) >= 200
    assert estimate_prompt_tokens(calls) >= 200


def test_max_tokens_above_the_per_call_cap_is_refused():
    budget, _ = guard(max_tokens_per_call=100)
    assert budget.check("cheap", 10, 101) == "max_tokens_cap"
    assert budget.check("cheap", 10, 100) is None


def test_worst_case_cost_above_the_per_call_cap_is_refused():
    budget, _ = guard(max_tokens_per_call=None, max_cost_per_call_usd=0.001)
    # 100 prompt tokens * $1/M + 1000 completion * $2/M = $0.0021
    assert budget.check("cheap", 100, 1_000) == "call_cost_cap"
    assert budget.check("cheap", 100, 100) is None


def test_without_max_tokens_the_worst_case_uses_the_per_call_token_cap():
    budget, _ = guard(max_tokens_per_call=10_000, max_cost_per_call_usd=0.01)
    assert budget.worst_case_usd("cheap", 0, None) == pytest.approx(0.02)
    assert budget.check("cheap", 0, None) == "call_cost_cap"


def test_daily_cap_counts_recorded_spend_in_a_rolling_24_hours():
    budget, clock = guard(max_tokens_per_call=None, max_cost_per_day_usd=0.01)
    assert budget.check("cheap", 0, 1_000) is None
    cost = budget.record(
        "cheap", Usage(prompt_tokens=1_000, completion_tokens=4_000, total_tokens=5_000)
    )
    assert cost == pytest.approx(0.009)
    assert budget.spent_today() == pytest.approx(0.009)
    assert budget.check("cheap", 0, 1_000) == "daily_cost_cap"
    clock.now += DAY_S + 1
    assert budget.spent_today() == 0.0
    assert budget.check("cheap", 0, 1_000) is None


def test_a_model_without_prices_skips_the_cost_caps_but_not_the_token_cap():
    budget, _ = guard(
        max_tokens_per_call=50, max_cost_per_call_usd=0.0000001, max_cost_per_day_usd=0.0000001
    )
    assert budget.check("unpriced", 10_000, 50) is None
    assert budget.check("unpriced", 10, 51) == "max_tokens_cap"
    assert budget.record("unpriced", Usage(prompt_tokens=1, completion_tokens=1)) is None
    assert budget.spent_today() == 0.0


def test_recording_without_usage_adds_nothing():
    budget, _ = guard()
    assert budget.record("cheap", None) is None
    assert budget.spent_today() == 0.0


@pytest.mark.parametrize(
    ("value", "active"),
    [
        ("1", True),
        ("on", True),
        ("yes", True),
        ("", False),
        ("0", False),
        ("false", False),
        ("OFF", False),
        (None, False),
    ],
    ids=["one", "on", "yes", "empty", "zero", "false", "off-upper", "unset"],
)
def test_kill_switch_reads_the_contract_variable(value, active):
    policy = Policy(kill_switch_env="KILL")
    environ = {} if value is None else {"KILL": value}
    assert kill_switch_active(policy, environ) is active


def test_no_kill_switch_variable_means_never_active():
    assert kill_switch_active(Policy(kill_switch_env=None), {"KILL": "1"}) is False


# -- failed attempts the provider may bill ---------------------------------------------------


def test_a_failed_attempt_with_usage_is_charged_its_usage():
    budget, _ = guard()
    cost = budget.record_failed(
        "cheap", usage=Usage(prompt_tokens=1_000, completion_tokens=500), answered=True,
        category="contract", prompt_tokens=7,
    )  # fmt: skip
    assert cost == pytest.approx(0.002)
    assert budget.spent_today() == pytest.approx(0.002)


def test_usage_on_an_error_is_charged_even_in_an_unbilled_category():
    budget, _ = guard()
    cost = budget.record_failed(
        "cheap", usage=Usage(prompt_tokens=1_000, completion_tokens=0), answered=True,
        category="rate_limit", prompt_tokens=7,
    )  # fmt: skip
    assert cost == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("category", "chars", "expected"),
    [
        ("upstream", 0, 1_000 * 1.0 / 1e6),
        ("network", 400, (1_000 * 1.0 + 100 * 2.0) / 1e6),
        ("contract", 0, 1_000 * 1.0 / 1e6),
        ("timeout", 0, 1_000 * 1.0 / 1e6),
    ],
    ids=["5xx", "cut-stream", "broken-2xx", "stalled"],
)
def test_an_answered_failure_without_usage_is_charged_an_estimate(category, chars, expected):
    budget, _ = guard()
    cost = budget.record_failed(
        "cheap", usage=None, answered=True, category=category, prompt_tokens=1_000,
        completion_chars=chars,
    )  # fmt: skip
    assert cost == pytest.approx(expected)
    assert budget.spent_today() == pytest.approx(expected)


@pytest.mark.parametrize("category", sorted(UNBILLED_CATEGORIES), ids=sorted(UNBILLED_CATEGORIES))
def test_a_refusal_before_any_work_is_not_charged(category):
    budget, _ = guard()
    assert (
        budget.record_failed(
            "cheap", usage=None, answered=True, category=category, prompt_tokens=1_000
        )
        is None
    )
    assert budget.spent_today() == 0.0


def test_an_attempt_that_got_no_answer_is_not_charged():
    budget, _ = guard()
    cost = budget.record_failed(
        "cheap", usage=None, answered=False, category="network", prompt_tokens=1_000
    )
    assert cost is None
    assert budget.spent_today() == 0.0


def test_a_failed_attempt_on_an_unpriced_model_is_not_charged():
    budget, _ = guard()
    cost = budget.record_failed(
        "unpriced", usage=Usage(prompt_tokens=1, completion_tokens=1), answered=True,
        category="upstream", prompt_tokens=1,
    )  # fmt: skip
    assert cost is None


def test_failed_charges_count_towards_the_daily_cap():
    budget, _ = guard(max_tokens_per_call=None, max_cost_per_day_usd=0.0015)
    assert budget.check("cheap", 0, 0) is None
    budget.record_failed(
        "cheap", usage=None, answered=True, category="upstream", prompt_tokens=1_600
    )
    assert budget.check("cheap", 0, 0) == "daily_cost_cap"


def test_the_default_spend_store_keeps_one_bucket_per_second_however_many_calls():
    from chatcontract.policy.budget import MemorySpendStore

    store = MemorySpendStore()
    for i in range(5000):  # 5,000 calls in 5 seconds
        store.add(1000.0 + i / 1000, 0.001)
    assert len(store._buckets) <= 6
    assert store.total_since(0.0) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(100.4 + DAY_S - 0.5, 1.0, id="just-under-a-day-counts"),
        pytest.param(100.4 + DAY_S, 1.0, id="exactly-a-day-still-counts"),
        pytest.param(101.0 + DAY_S, 0.0, id="a-day-after-its-second-expires"),
    ],
)
def test_a_charge_counts_for_at_least_a_day_and_at_most_a_second_longer(now, expected):
    from chatcontract.policy.budget import MemorySpendStore

    store = MemorySpendStore()
    store.add(100.4, 1.0)
    assert store.total_since(now - DAY_S) == expected


def test_expired_buckets_leave_no_rounding_behind():
    from chatcontract.policy.budget import MemorySpendStore

    store = MemorySpendStore()
    for i in range(10):
        store.add(float(i), 0.1)
    assert store.total_since(1e9) == 0.0
    store.add(2e9, 0.3)
    assert store.total_since(2e9 - DAY_S) == 0.3
