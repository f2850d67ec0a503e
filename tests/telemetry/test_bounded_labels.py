import threading

import pytest

from chatcontract.contract import load_preset
from chatcontract.telemetry._labels import (
    OTHER,
    UNKNOWN,
    BoundedValues,
    contract_models,
    contract_routes,
)


def test_known_values_are_always_kept_even_past_the_cap():
    values = BoundedValues(known=("gpt-4.1-nano",), limit=0)
    assert values("gpt-4.1-nano") == "gpt-4.1-nano"
    assert values("gpt-5") == OTHER


def test_new_values_are_admitted_up_to_the_limit_then_other():
    values = BoundedValues(limit=2)
    assert [values(v) for v in ("a1", "b2", "c3", "a1", "d4")] == ["a1", "b2", OTHER, "a1", OTHER]


@pytest.mark.parametrize(
    "raw", ["has space", "quote'd", "x" * 101, "-leading-dash", "new\nline"],
    ids=["space", "quote", "long", "dash", "newline"],
)  # fmt: skip
def test_values_that_are_not_identifiers_become_other(raw):
    assert BoundedValues(limit=50)(raw) == OTHER


@pytest.mark.parametrize("raw", [None, ""], ids=["none", "empty"])
def test_missing_values_are_unknown(raw):
    assert BoundedValues()(raw) == UNKNOWN


@pytest.mark.parametrize(
    "raw", ["deepseek/deepseek-r1", "claude-3-5-sonnet-20241022", "models/gemini-2.5-pro:free"],
    ids=["slash", "dated", "colon"],
)  # fmt: skip
def test_real_model_ids_are_well_formed(raw):
    assert BoundedValues()(raw) == raw


def test_the_cap_holds_under_concurrency():
    values = BoundedValues(limit=10)
    seen = []

    def work(offset):
        seen.extend(values(f"m{offset}-{i}") for i in range(50))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({value for value in seen if value != OTHER}) == 10


def test_a_negative_limit_is_refused():
    with pytest.raises(ValueError, match="limit"):
        BoundedValues(limit=-1)


def test_the_contract_names_its_models_and_routes():
    contract = load_preset("cometapi")
    assert contract.model in contract_models(contract)
    assert contract_routes(contract)[0] == "primary"
    assert contract_models(None) == ()
    assert contract_routes(None) == ("primary",)
