"""Where a call goes next: silent routes, context windows, policy refusals (issue 12 rows)."""

import dataclasses

import pytest

from chatcontract.contract import Policy, RetryPolicy, Timeouts
from chatcontract.failures import make_failure
from chatcontract.policy import Deadline, Decision, context_route, decide
from chatcontract.policy.decide import SILENT_CODES

POLICY = Policy(
    timeouts=Timeouts(total_ms=60_000),
    retry=RetryPolicy(max_attempts=3, backoff_initial_ms=100, jitter=0.0, retry_after_cap_ms=500),
    fallback_reserve_ms=1_000,
)
RETRYABLE = ("rate_limit", "upstream", "timeout", "network")
NON_RETRYABLE = ("auth", "validation", "model", "quota", "endpoint")


def _decide(kind, category, code, *, policy=POLICY, has_fallback=True, attempt=1, **extra):
    return decide(
        make_failure(kind=kind, category=category, code=code, message="m"),
        attempt=attempt,
        policy=policy,
        retryable=extra.pop("retryable", RETRYABLE),
        non_retryable=extra.pop("non_retryable", NON_RETRYABLE),
        deadline=Deadline(60.0, clock=lambda: 0.0),
        has_fallback=has_fallback,
        retry_after_s=None,
        rng=lambda: 0.5,
        **extra,
    )


@pytest.mark.parametrize("code", SILENT_CODES, ids=SILENT_CODES)
def test_a_silent_route_goes_straight_to_the_next_route_without_a_retry(code):
    decision = _decide("transport", "timeout", code)
    assert (decision.action, decision.delay_s) == ("fallback", 0.0)
    assert "no same-route retry" in decision.reason


@pytest.mark.parametrize("code", SILENT_CODES, ids=SILENT_CODES)
def test_a_silent_route_without_a_fallback_is_not_retried_either(code):
    decision = _decide("transport", "timeout", code, has_fallback=False)
    assert (decision.action, decision.stop) == ("raise", "exhausted")


@pytest.mark.parametrize(
    ("category", "code"),
    [("timeout", "connect_timeout"), ("network", "connect_refused"), ("network", "reset")],
    ids=["connect-timeout", "connect-refused", "reset-before-any-byte"],
)
def test_a_connect_failure_or_reset_still_gets_one_immediate_retry(category, code):
    first = _decide("transport", category, code)
    assert (first.action, first.delay_s) == ("retry", 0.0)
    assert _decide("transport", category, code, attempt=2).action == "fallback"


def test_a_silent_http_timeout_status_is_not_a_silent_route():
    # A 408 is an answer, not silence: it keeps its backoff retry.
    decision = _decide("http", "timeout", "read_timeout")
    assert (decision.action, decision.delay_s) == ("retry", pytest.approx(0.1))


@pytest.mark.parametrize(
    ("route_window", "next_windows", "expected"),
    [
        (8_192, (128_000,), 0),
        (8_192, (8_192, 128_000), 1),
        (8_192, (4_096, 8_192, None), 2),
        (8_192, (4_096, 8_192), None),
        (None, (4_096,), 0),
        (8_192, (), None),
        (8_192, (8_193,), 0),
    ],
    ids=[
        "larger",
        "equal-skipped",
        "unknown-tried",
        "none-larger",
        "refuser-unknown",
        "no-route",
        "one-more-token",
    ],
)
def test_context_route_picks_the_first_route_that_may_hold_the_request(
    route_window, next_windows, expected
):
    assert context_route(route_window, next_windows) == expected


def test_context_length_is_never_retried_on_the_same_route():
    decision = _decide(
        "api_error", "context_length", "context_length_exceeded", retryable=(), non_retryable=()
    )
    assert (decision.action, decision.skip) == ("fallback", 0)


def test_context_length_passes_over_routes_no_larger_than_the_refusing_one():
    decision = _decide(
        "api_error",
        "context_length",
        "context_length_exceeded",
        route_window=8_192,
        next_windows=(8_192, 4_096, 32_768),
    )
    assert (decision.action, decision.skip) == ("fallback", 2)
    assert "passing over 2 route(s)" in decision.reason


def test_context_length_with_no_larger_route_is_a_clean_error_that_says_so():
    decision = _decide(
        "api_error",
        "context_length",
        "context_length_exceeded",
        route_window=8_192,
        next_windows=(8_192,),
    )
    assert (decision.action, decision.stop) == ("raise", "non_retryable")
    assert "too large for this route's context window (8192 tokens)" in decision.reason
    assert "no fallback route declares a larger one" in decision.reason


def test_context_length_with_no_fallback_at_all_says_none_is_configured():
    decision = _decide("api_error", "context_length", "x", has_fallback=False)
    assert (decision.action, decision.stop) == ("raise", "non_retryable")
    assert "(unknown) and no fallback route is configured" in decision.reason


def test_context_length_without_windows_goes_to_the_next_route():
    decision = _decide("api_error", "context_length", "x", next_windows=None)
    assert (decision.action, decision.skip) == ("fallback", 0)


def test_content_policy_is_one_attempt_and_a_clean_error_by_default():
    decision = _decide("api_error", "content_policy", "content_policy_violation")
    assert (decision.action, decision.stop) == ("raise", "non_retryable")
    assert "not retried and has no fallback" in decision.reason


def test_content_policy_falls_back_when_the_contract_opts_in():
    policy = dataclasses.replace(POLICY, content_policy_fallback=True)
    decision = _decide("api_error", "content_policy", "content_policy_violation", policy=policy)
    assert (decision.action, decision.delay_s) == ("fallback", 0.0)
    alone = _decide("api_error", "content_policy", "x", policy=policy, has_fallback=False)
    assert (alone.action, alone.stop) == ("raise", "exhausted")


def test_the_opt_in_does_not_move_other_refusals():
    policy = dataclasses.replace(POLICY, content_policy_fallback=True)
    assert _decide("api_error", "validation", "x", policy=policy).action == "raise"


def test_a_decision_skip_is_only_for_a_fallback_and_never_negative():
    with pytest.raises(ValueError, match="skip"):
        Decision(action="retry", skip=1)
    with pytest.raises(ValueError, match="skip"):
        Decision(action="fallback", skip=-1)
    assert Decision(action="fallback", skip=2).skip == 2


def test_context_length_is_not_retried_even_when_the_contract_lists_it_as_retryable():
    decision = _decide("api_error", "context_length", "x", retryable=("context_length",))
    assert (decision.action, decision.delay_s) == ("fallback", 0.0)


@pytest.mark.parametrize("category", ["auth", "budget", "validation"])
def test_the_content_policy_opt_in_moves_no_other_category(category):
    policy = dataclasses.replace(POLICY, content_policy_fallback=True)
    decision = _decide("api_error", category, "x", policy=policy)
    assert (decision.action, decision.stop) == ("raise", "non_retryable")


@pytest.mark.parametrize("category", ["auth", "quota", "validation"])
def test_only_context_length_speaks_of_context_windows(category):
    decision = _decide("api_error", category, "x", has_fallback=False, non_retryable=())
    assert "context window" not in decision.reason


def test_a_long_retry_after_does_not_stop_the_backoff_retry_of_an_upstream_failure():
    decision = decide(
        make_failure(kind="api_error", category="upstream", code="x", message="m"),
        attempt=1,
        policy=POLICY,
        retryable=RETRYABLE,
        non_retryable=NON_RETRYABLE,
        deadline=Deadline(60.0, clock=lambda: 0.0),
        has_fallback=True,
        retry_after_s=7.0,
        rng=lambda: 0.5,
    )
    assert (decision.action, decision.delay_s) == ("retry", pytest.approx(0.1))
