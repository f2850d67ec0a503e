import pytest

from chatcontract.contract import CATEGORIES, Policy, RetryPolicy, Timeouts
from chatcontract.failures import make_failure
from chatcontract.policy import ALL_ATTEMPTS, RULES, Deadline, Decision, Rule, decide, rule_for

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
        ("stream_stalled", "fallback", 0.0),
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
    decision = run("rate_limit", retry_after_s=0.3)
    assert (decision.action, decision.delay_s) == ("retry", pytest.approx(0.3))
    assert "retry-after" in decision.reason


def test_a_retry_after_above_the_cap_is_never_cut_short_it_falls_back():
    # Retrying after 0.5 s when the server asked for 7 s is hammering inside its window.
    capped = run("rate_limit", retry_after_s=7.0)
    assert (capped.action, capped.delay_s) == ("fallback", 0.0)
    assert "retry-after 7.000 s is above the 0.500 s cap" in capped.reason
    alone = run("rate_limit", retry_after_s=7.0, has_fallback=False)
    assert (alone.action, alone.stop) == ("raise", "exhausted")
    assert "above the 0.500 s cap and no fallback route" in alone.reason


def test_a_retry_after_exactly_at_the_cap_is_waited_for():
    decision = run("rate_limit", retry_after_s=0.5)
    assert (decision.action, decision.delay_s) == ("retry", pytest.approx(0.5))


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


# -- every row of RULES, with no contract sets in the way ------------------------------

EXPECTED_RULES = {
    "transport:timeout": (1, "none", "fallback"),
    "transport:network": (1, "none", "fallback"),
    "rate_limit": (ALL_ATTEMPTS, "retry_after", "fallback"),
    "quota": (0, "none", "fallback"),
    "upstream": (1, "backoff", "fallback"),
    "timeout": (1, "backoff", "fallback"),
    "network": (1, "backoff", "fallback"),
    "contract": (0, "none", "fallback"),
    "content": (0, "none", "fallback"),
    "usage": (0, "none", "fallback"),
    "validation": (0, "none", "raise"),
    "auth": (0, "none", "raise"),
    "model": (0, "none", "raise"),
    "endpoint": (0, "none", "raise"),
    "budget": (0, "none", "raise"),
    "context_length": (0, "none", "fallback"),
    "content_policy": (0, "none", "raise"),
    "transport:timeout:read_timeout": (0, "none", "fallback"),
    "transport:timeout:first_byte_timeout": (0, "none", "fallback"),
    "transport:timeout:first_token_timeout": (0, "none", "fallback"),
    "transport:timeout:stream_stalled": (0, "none", "fallback"),
}


def _failure_for_key(key):
    parts = key.split(":")
    if len(parts) == 3:
        kind, category, code = parts
    else:
        kind, category, code = (*parts, "x") if len(parts) == 2 else ("api_error", parts[0], "x")
    return make_failure(kind=kind, category=category, code=code, message="m")


def test_the_rules_table_has_exactly_the_documented_rows():
    assert set(RULES) == set(EXPECTED_RULES)


@pytest.mark.parametrize(("key", "row"), list(EXPECTED_RULES.items()), ids=list(EXPECTED_RULES))
def test_each_rules_row_is_what_rule_for_returns_without_contract_sets(key, row):
    failure_ = _failure_for_key(key)
    rule = rule_for(failure_)
    assert (rule.retries, rule.wait, rule.then) == row
    assert RULES[key] == rule


@pytest.mark.parametrize(("key", "row"), list(EXPECTED_RULES.items()), ids=list(EXPECTED_RULES))
def test_each_rules_row_decides_the_first_and_the_last_attempt(key, row):
    retries, wait, then = row
    failure_ = _failure_for_key(key)
    clock = FakeClock()

    def decide_at(attempt, has_fallback=True):
        return decide(
            failure_,
            attempt=attempt,
            policy=POLICY,
            retryable=(),
            non_retryable=(),
            deadline=Deadline(60.0, clock=clock),
            has_fallback=has_fallback,
            retry_after_s=0.3,
            rng=lambda: 0.5,
        )

    first = decide_at(1)
    if retries == 0:
        expected = "fallback" if then == "fallback" else "raise"
        assert first.action == expected
    else:
        waits = {"none": 0.0, "backoff": 0.1, "retry_after": 0.3}
        assert (first.action, first.delay_s) == ("retry", pytest.approx(waits[wait]))
    allowed = POLICY.retry.max_attempts - 1 if retries == ALL_ATTEMPTS else retries
    last = decide_at(allowed + 1, has_fallback=False)
    assert last.action == "raise"
    # context_length with no route left is a clean refusal, not an exhausted retry budget.
    refused = (then, retries) == ("raise", 0) or key == "context_length"
    assert last.stop == ("non_retryable" if refused else "exhausted")


def test_quota_row_falls_back_even_when_the_contract_does_not_list_it():
    # Every other test passes quota as non-retryable; the row itself must say "no retry".
    decision = run("quota", non_retryable=())
    assert decision.action == "fallback"
    assert "no same-route retry" in decision.reason
    assert run("quota", non_retryable=(), has_fallback=False).stop == "exhausted"


@pytest.mark.parametrize(
    ("name", "then_action", "then_stop"),
    [
        ("validation", "raise", "exhausted"),
        ("model", "raise", "exhausted"),
        ("quota", "fallback", None),
        ("missing_choices", "fallback", None),
    ],
    ids=["validation", "model", "quota", "contract"],
)
def test_a_promoted_class_retries_up_to_max_attempts_then_follows_its_row(
    name, then_action, then_stop
):
    category = FAILURES[name][1]
    sets = {"retryable": (category,), "non_retryable": ()}
    for attempt in (1, 2):
        decision = run(name, attempt=attempt, **sets)
        assert decision.action == "retry"
        assert f"retry {attempt} of 2" in decision.reason
    used_up = run(name, attempt=3, **sets)
    assert (used_up.action, used_up.stop) == (then_action, then_stop)
    alone = run(name, attempt=3, has_fallback=False, **sets)
    assert (alone.action, alone.stop) == ("raise", "exhausted")


def test_a_promoted_class_honours_retry_after_within_its_cap():
    sets = {"retryable": ("quota",), "non_retryable": ()}
    decision = run("quota", retry_after_s=0.3, **sets)
    assert (decision.action, decision.delay_s) == ("retry", pytest.approx(0.3))
    assert "retry-after" in decision.reason
    assert run("quota", retry_after_s=9.0, **sets).action == "fallback"
    assert run("quota", **sets).delay_s == pytest.approx(0.1)  # no hint: the backoff


def test_a_non_retryable_listing_removes_the_retries_of_a_retried_row():
    rule = rule_for(failure("rate_limit"), non_retryable=("rate_limit",))
    assert (rule.retries, rule.then) == (0, "fallback")
    decision = run("rate_limit", non_retryable=("rate_limit",), has_fallback=False)
    assert (decision.action, decision.stop) == ("raise", "exhausted")


def test_a_retry_counts_the_shrunk_reserve_under_a_short_deadline():
    # A 5 s reserve under a 2 s call shrinks to 1 s: an immediate retry (0.1 s) fits in 1.5 s.
    policy = Policy(retry=RetryPolicy(max_attempts=2), fallback_reserve_ms=5_000)
    decision = run("connect_timeout", total_s=2.0, spent_s=0.5, policy=policy)
    assert decision.action == "retry"
    blocked = run("connect_timeout", total_s=2.0, spent_s=0.95, policy=policy)
    assert blocked.action == "fallback"
    assert "1.100 s" in blocked.reason  # 0.1 s attempt + the 1 s shrunk reserve


def test_a_retry_is_taken_while_it_fits_in_the_time_left():
    # An immediate retry needs 0.1 s + the 1 s reserve: 1.125 s left is enough, 1.0625 s not.
    assert run("connect_timeout", total_s=10.0, spent_s=8.875).action == "retry"
    assert run("connect_timeout", total_s=10.0, spent_s=8.9375).action == "fallback"


def test_the_fallback_needs_one_minimal_attempt_of_time():
    assert run("quota", total_s=1.0, spent_s=0.875).action == "fallback"
    late = run("quota", total_s=1.0, spent_s=0.9375)
    assert (late.action, late.stop) == ("raise", "deadline")
    assert "before the fallback" in late.reason


def test_a_blocked_retry_without_a_fallback_stops_on_the_deadline_and_says_why():
    decision = run("upstream_500", total_s=1.0, spent_s=0.95, has_fallback=False)
    assert (decision.action, decision.stop) == ("raise", "deadline")
    assert "needs 0.200 s but 0.050 s are left" in decision.reason


def test_reasons_name_the_failure_and_the_count_of_retries_used():
    assert run("upstream_500", attempt=2).reason == (
        "api_error/upstream/server_error: fall back (1 retry used)"
    )
    assert run("rate_limit", attempt=3).reason == (
        "api_error/rate_limit/rate_limited: fall back (2 retries used)"
    ).replace("api_error", "http")
    first = run("rate_limit")
    assert first.reason == "http/rate_limit/rate_limited: retry 1 of 2 after 0.100 s (backoff)"
    assert run("validation").reason.startswith(
        "api_error/validation/invalid_request is not retried and has no fallback: fix the"
    )
    assert run("auth", attempt=1, retryable=("auth",), non_retryable=()).action == "retry"
    assert run("connect_timeout").reason.endswith("(immediately)")


def test_retry_decision_maps_raise_to_none():
    assert Decision(action="retry").retry_decision == "retry"
    assert Decision(action="fallback").retry_decision == "fallback"
    assert Decision(action="raise", stop="exhausted").retry_decision == "none"


def test_a_rule_rejects_a_negative_retry_count_other_than_all_attempts():
    with pytest.raises(ValueError, match="retries"):
        Rule(retries=-2)
    assert Rule(retries=ALL_ATTEMPTS).retries == -1
    assert Rule(retries=0) == Rule(retries=0, wait="none", then="fallback")


def test_boundaries_a_retry_or_fallback_that_exactly_fits_is_taken():
    # 0.1 s left and an immediate retry needs exactly MIN_ATTEMPT_S: it is taken.
    assert run("connect_timeout", total_s=0.1, has_fallback=False).action == "retry"
    # 0.1 s left is exactly one minimal attempt: enough for the fallback.
    assert run("quota", total_s=0.1).action == "fallback"


def test_a_negative_retry_after_means_no_wait():
    decision = run("rate_limit", retry_after_s=-2.0)
    assert (decision.action, decision.delay_s) == ("retry", 0.0)


def test_a_blocked_retry_names_the_time_it_needs_with_the_reserve():
    decision = run("connect_timeout", total_s=10.0, spent_s=8.9375)
    assert decision.reason == (
        "transport/timeout/connect_timeout: fall back (a retry needs 1.100 s but 1.062 s are left)"
    )


@pytest.mark.parametrize(
    ("name", "sets", "reason"),
    [
        (
            "validation",
            {"retryable": ("validation",), "non_retryable": ()},
            "api_error/validation/invalid_request: retries used, not eligible for a fallback",
        ),
        (
            "quota",
            {},
            "api_error/quota/insufficient_quota: no retry left and no fallback route",
        ),
    ],
    ids=["raise-row", "fallback-row"],
)
def test_exhausted_reasons_say_whether_a_fallback_was_possible(name, sets, reason):
    decision = run(name, attempt=3, has_fallback=False, **sets)
    assert (decision.action, decision.stop, decision.reason) == ("raise", "exhausted", reason)


def test_two_attempts_allow_exactly_one_retry():
    policy = Policy(retry=RetryPolicy(max_attempts=2, jitter=0.0), fallback_reserve_ms=1_000)
    assert run("rate_limit", attempt=1, policy=policy).action == "retry"
    assert run("rate_limit", attempt=2, policy=policy).action == "fallback"


def test_a_fractional_second_reserve_is_kept_exactly():
    policy = Policy(retry=RetryPolicy(max_attempts=2), fallback_reserve_ms=1_500)
    decision = run("connect_timeout", total_s=10.0, spent_s=8.5, policy=policy)
    assert decision.reason.endswith("(a retry needs 1.600 s but 1.500 s are left)")
