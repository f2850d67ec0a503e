"""Millisecond retry-after hints keep their fraction of a second."""

import pytest

from chatcontract.policy import parse_retry_after


@pytest.mark.parametrize("name", ["retry-after-ms", "llm_provider-retry-after-ms"])
@pytest.mark.parametrize(("value", "seconds"), [("1500", 1.5), ("250", 0.25), ("2000", 2.0)])
def test_a_millisecond_hint_is_read_to_the_millisecond(name, value, seconds):
    assert parse_retry_after({name: value}) == pytest.approx(seconds)
