import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcontract.contract import RetryPolicy
from chatcontract.policy import compute_backoff, parse_duration, parse_retry_after

NO_JITTER = RetryPolicy(
    backoff_initial_ms=500, backoff_max_ms=8_000, backoff_multiplier=2.0, jitter=0.0
)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (50, 8.0)],
    ids=["first", "second", "third", "fourth", "reaches-cap", "capped", "far-capped"],
)
def test_backoff_grows_exponentially_up_to_the_cap(attempt, expected):
    assert compute_backoff(attempt, NO_JITTER, rng=lambda: 0.9) == pytest.approx(expected)


def test_backoff_never_overflows_on_huge_attempt_numbers():
    assert compute_backoff(10_000, NO_JITTER, rng=lambda: 0.5) == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("draw", "factor"), [(0.0, 0.5), (0.5, 1.0), (0.999999, 1.5)], ids=["low", "middle", "high"]
)
def test_jitter_spreads_the_base_delay_by_the_policy_fraction(draw, factor):
    policy = RetryPolicy(backoff_initial_ms=1_000, backoff_max_ms=8_000, jitter=0.5)
    assert compute_backoff(1, policy, rng=lambda: draw) == pytest.approx(factor, rel=1e-5)


def test_attempt_numbers_start_at_one():
    with pytest.raises(ValueError, match="from 1"):
        compute_backoff(0, NO_JITTER, rng=lambda: 0.5)


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    initial=st.integers(min_value=0, max_value=60_000),
    maximum=st.integers(min_value=0, max_value=60_000),
    multiplier=st.floats(min_value=0.01, max_value=100.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_backoff_always_within_zero_and_max_times_one_plus_jitter(
    attempt, initial, maximum, multiplier, jitter, draw
):
    policy = RetryPolicy(
        backoff_initial_ms=initial,
        backoff_max_ms=maximum,
        backoff_multiplier=multiplier,
        jitter=jitter,
    )
    delay = compute_backoff(attempt, policy, rng=lambda: draw)
    assert 0.0 <= delay <= maximum * (1 + jitter) / 1000 + 1e-9


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1000", "retry-after": "5"}, 1.0),
        ({"Retry-After-Ms": "250"}, 0.25),
        ({"retry-after": "2"}, 2.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"x-ratelimit-reset-requests": "1m30s"}, 90.0),
        ({"x-ratelimit-reset-requests": "20ms"}, 0.02),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after": "-4"}, None),
        ({"retry-after": "nan"}, None),
        ({"x-ratelimit-reset-requests": "1 minute"}, None),
        ({}, None),
        ({"llm_provider-retry-after-ms": "1000", "llm_provider-retry-after": "5"}, 1.0),
        ({"llm_provider-retry-after": "2", "x-ratelimit-reset-requests": "9s"}, 2.0),
        ({"retry-after": "3", "llm_provider-retry-after": "2"}, 3.0),
        ({"llm_provider-retry-after-ms": "soon", "llm_provider-retry-after": "x"}, None),
    ],
    ids=[
        "ms-wins",
        "ms-case-insensitive",
        "seconds",
        "fractional-seconds",
        "duration",
        "duration-ms",
        "bad-ms-falls-through",
        "negative",
        "nan",
        "bad-duration",
        "none",
        "litellm-ms-wins",
        "litellm-seconds-over-reset",
        "own-header-over-litellm",
        "litellm-bad-values",
    ],
)
def test_retry_after_headers_are_read_in_order_of_precision(headers, expected):
    result = parse_retry_after(headers)
    assert result == (pytest.approx(expected) if expected is not None else None)


def test_retry_after_http_date_is_relative_to_the_given_wall_clock():
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(7.0)
    assert parse_retry_after({"retry-after": date}) is None  # a date needs ``now``
    past = email.utils.formatdate(now - 60, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6ms", 0.006),
        ("2h", 7200.0),
        ("1m0.5s", 60.5),
        ("", None),
        ("s", None),
        ("5", None),
        ("1s junk", None),
    ],
)
def test_durations_parse_or_return_none(text, seconds):
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_a_long_duration_is_summed_part_by_part():
    # Positions past 256 are not cached small ints: the parser compares values, not identity.
    assert parse_duration("1s" * 200) == pytest.approx(200.0)
    assert parse_duration("1s" * 200 + "x") is None


@pytest.mark.parametrize("value", ["-0.5", "-1", "-0.001"], ids=str)
def test_a_negative_fraction_of_a_second_is_ignored(value):
    assert parse_retry_after({"retry-after": value}) is None
    assert parse_retry_after({"retry-after-ms": value}) is None


@pytest.mark.parametrize(("value", "as_if"), [(1.5, 1.0), (-0.5, 0.0)], ids=["above-1", "below-0"])
def test_a_random_source_out_of_range_is_clamped(value, as_if):
    policy = RetryPolicy(backoff_initial_ms=1_000, jitter=0.5)
    assert compute_backoff(1, policy, rng=lambda: value) == pytest.approx(
        compute_backoff(1, policy, rng=lambda: as_if)
    )


def test_a_zero_retry_after_means_now_not_absent():
    assert parse_retry_after({"retry-after": "0"}) == 0.0
    assert parse_retry_after({"retry-after-ms": "0"}) == 0.0


@pytest.mark.parametrize("value", ["soon", "Wed, 21 Oct 2015 25:61:00 GMT", ""], ids=str)
def test_an_unparsable_retry_after_date_is_ignored_even_with_a_clock(value):
    assert parse_retry_after({"retry-after": value}, now=1_445_412_480.0) is None
