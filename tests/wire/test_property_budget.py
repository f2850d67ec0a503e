"""The wire property tests draw their own counts normally and the profile's under mutation."""

import pytest
from _examples import examples
from hypothesis import settings


def test_a_normal_run_draws_the_tests_own_count(monkeypatch):
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    assert examples(300) == 300


def test_a_mutation_run_draws_the_profiles_count(monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "mutation")
    profile = settings.get_profile("mutation")
    assert examples(300) == profile.max_examples == 20
    assert profile.derandomize


@pytest.mark.parametrize("count", [5, 20], ids=["below", "equal"])
def test_a_mutation_run_never_draws_more_than_the_test_asks(monkeypatch, count):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "mutation")
    assert examples(count) == count
