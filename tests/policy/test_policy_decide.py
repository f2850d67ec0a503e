import pytest

from chatcontract.contract import CATEGORIES, Policy, RetryPolicy, Timeouts
from chatcontract.failures import make_failure
from chatcontract.policy import RULES, Deadline, Decision, decide, rule_for

POLICY = Policy(
    timeouts=Timeouts(total_ms=60_000),
    retry=RetryPolicy(
        max_attempts=3,
        backoff_initial_ms=100,
        backoff_max_ms=1_000,
        backoff_multiplier=2.0,
        jitter=0.0,
        retry_after_cap_ms=500,
    ),
    fallback_reserve_ms=1_000,
)
RETRYABLE = ("rate_limit", "upstream", "timeout", "network")
NON_RETRYABLE = ("auth", "validation", "model", "quota", "endpoint")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


FAILURES = {
    "connect_timeout": ("transport", "timeout", "connect_timeout"),
    "reset": ("transport", "network", "reset"),
    "stream_stalled": ("transport", "timeout", "stream_stalled"),
    "rate_limit": ("http", "rate_limit", "rate_limited"),
    "quota": ("api_error", "quota", "insufficient_quota"),
    "upstream_500": ("api_error", "upstream", "server_error"),
    "http_408": ("http", "timeout", "request_timeout"),
    "missing_choices": ("parser", "contract", "missing_choices"),
    "stream_cut": ("parser", "contract", "stream_cut"),
    "empty_content": ("semantic", "content", "empty_content"),
    "usage_mismatch": ("semantic", "usage", "usage_mismatch"),
    "validation": ("api_error", "validation", "invalid_request"),
    "auth": ("http", "auth", "unauthorized"),
    "model": ("api_error", "model", "model_not_found"),
    "endpoint": ("http", "endpoint", "not_found"),
    "budget": ("budget", "budget", "max_tokens_cap"),
}


def failure(name):
    kind, category, code = FAILURES[name]
    return make_failure(kind=kind, category=category, code=code, message=name)


def run(
    name,
    *,
    attempt=1,
    has_fallback=True,
    retry_after_s=None,
    total_s=60.0,
    policy=POLICY,
    retryable=RETRYABLE,
    non_retryable=NON_RETRYABLE,
    spent_s=0.0,
) -> Decision:
    clock = FakeClock()
    deadline = Deadline(total_s, clock=clock)
    clock.now += spent_s
    return decide(
        failure(name),
        attempt=attempt,
        policy=policy,
        retryable=retryable,
        non_retryable=non_retryable,
        deadline=deadline,
        has_fallback=has_fallback,
        retry_after_s=retry_after_s,
        rng=lambda: 0.5,
    )


@pytest.mark.parametrize(
    ("name", "action", "delay"),
    [
        ("connect_timeout", "retry", 0.0),
        ("reset", "retry", 0.0),
        ("stream_stalled", "retry", 0.0),
        ("rate_limit", "retry", 0.1),
        ("quota", "fallback", 0.0),
        ("upstream_500", "retry", 0.1),
        ("http_408", "retry", 0.1),
        ("missing_choices", "fallback", 0.0),
        ("stream_cut", "fallback", 0.0),
        ("empty_content", "fallback", 0.0),
        ("usage_mismatch", "fallback", 0.0),
        ("validation", "raise", 0.0),
        ("auth", "raise", 0.0),
        ("model", "raise", 0.0),
        ("endpoint", "raise", 0.0),
        ("budget", "raise", 0.0),
    ],
    ids=list(FAILURES),
)
def test_first_failure_of_each_class_follows_the_table(name, action, delay):
    decision = run(name)
    assert decision.action == action
    assert decision.delay_s == pytest.approx(delay)


@pytest.mark.parametrize("name", ["validation", "auth", "model", "endpoint"])
def test_non_retryable_classes_raise_even_without_a_fallback_and_say_so(name):
    decision = run(name, has_fallback=False)
    assert (decision.action, decision.stop) == ("raise", "non_retryable")
    assert decision.retry_decision == "none"


@pytest.mark.parametrize("name", ["connect_timeout", "reset", "upstream_500"])
def test_transport_and_upstream_failures_get_exactly_one_retry_then_fallback(name):
    assert run(name, attempt=2).action == "fallback"
    decision = run(name, attempt=2, has_fallback=False)
    assert (decision.action, decision.stop) == ("raise", "exhausted")


def test_rate_limit_retries_up_to_max_attempts_with_growing_backoff_then_falls_back():
    assert run("rate_limit", attempt=1).delay_s == pytest.approx(0.1)
    second = run("rate_limit", attempt=2)
    assert (second.action, second.delay_s) == ("retry", pytest.approx(0.2))
    assert run("rate_limit", attempt=3).action == "fallback"


def test_rate_limit_honours_retry_after_within_its_cap():
    assert run("rate_limit", retry_after_s=0.3).delay_s == pytest.approx(0.3)
    capped = run("rate_limit", retry_after_s=7.0)
    assert capped.delay_s == pytest.approx(0.5)  # retry_after_cap_ms
    assert "retry-after" in capped.reason


def test_upstream_uses_backoff_not_the_retry_after_hint():
    assert run("upstream_500", retry_after_s=0.4).delay_s == pytest.approx(0.1)


def test_quota_is_never_retried_on_the_same_route():
    assert run("quota").action == "fallback"
    decision = run("quota", has_fallback=False)
    assert (decision.action, decision.stop) == ("raise", "exhausted")


def test_max_attempts_of_one_means_no_retry_at_all():
    policy = Policy(retry=RetryPolicy(max_attempts=1))
    assert run("rate_limit", policy=policy).action == "fallback"
    assert run("connect_timeout", policy=policy).action == "fallback"


def test_a_retry_that_does_not_fit_before_the_fallback_reserve_becomes_a_fallback():
    # 1.05 s left: an immediate retry needs 0.1 s + the 1 s reserve for the fallback.
    decision = run("connect_timeout", total_s=10.0, spent_s=8.95)
    assert decision.action == "fallback"
    assert "left" in decision.reason
    assert run("connect_timeout", total_s=10.0, spent_s=8.95, has_fallback=False).action == (
        "retry"
    )


def test_a_wait_longer_than_the_deadline_raises_deadline_instead_of_sleeping_past_it():
    decision = run(
        "rate_limit",
        total_s=2.0,
        retry_after_s=5.0,
        has_fallback=False,
        policy=Policy(
            timeouts=Timeouts(total_ms=60_000), retry=RetryPolicy(retry_after_cap_ms=10_000)
        ),
    )
    assert (decision.action, decision.stop) == ("raise", "deadline")


def test_an_expired_deadline_stops_even_a_fallback():
    decision = run("quota", total_s=1.0, spent_s=1.0)
    assert (decision.action, decision.stop) == ("raise", "deadline")


def test_contract_sets_adjust_the_table():
    # upstream listed as non-retryable: straight to the fallback.
    assert run("upstream_500", retryable=(), non_retryable=("upstream",)).action == "fallback"
    # contract listed as retryable: retried with backoff before falling back.
    decision = run("missing_choices", retryable=("contract",), non_retryable=())
    assert (decision.action, decision.delay_s) == ("retry", pytest.approx(0.1))


def test_every_category_has_a_rule_and_transport_rows_refine_categories():
    assert set(CATEGORIES) <= set(RULES)
    transport = rule_for(failure("connect_timeout"))
    http_timeout = rule_for(failure("http_408"))
    assert (transport.wait, http_timeout.wait) == ("none", "backoff")


def test_a_decision_carries_a_stop_exactly_when_it_raises():
    with pytest.raises(ValueError, match="stop"):
        Decision(action="raise")
    with pytest.raises(ValueError, match="stop"):
        Decision(action="retry", stop="deadline")
    with pytest.raises(ValueError, match="delay"):
        Decision(action="retry", delay_s=-1)
