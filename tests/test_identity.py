"""Target identities: what a stored row says about the endpoint it came from."""

from __future__ import annotations

import pytest

from chatcontract.contract import load_preset
from chatcontract.identity import TargetIdentity, clean_base_url, identity_of
from chatcontract.target import Target


@pytest.mark.parametrize(
    ("url", "cleaned"),
    [
        ("https://api.cometapi.com/v1", "https://api.cometapi.com/v1"),
        ("https://api.cometapi.com/v1/", "https://api.cometapi.com/v1"),
        ("HTTPS://API.CometAPI.com/v1", "https://api.cometapi.com/v1"),
        ("https://user:s3cret@proxy.example:8443/v1", "https://proxy.example:8443/v1"),
        ("https://api.example.com/v1?key=sk-abcdefgh123#frag", "https://api.example.com/v1"),
        ("http://[::1]:4000/v1", "http://[::1]:4000/v1"),
        ("http://[::1", "http://[::1"),
        ("https://h:87a7/v1", "https://h:87a7/v1"),
    ],
    ids=[
        "plain",
        "trailing-slash",
        "case",
        "credentials",
        "query",
        "ipv6",
        "malformed",
        "bad-port",
    ],
)
def test_a_base_url_is_kept_without_credentials_query_or_fragment(url: str, cleaned: str) -> None:
    assert clean_base_url(url) == cleaned


def test_a_malformed_url_with_a_key_is_redacted() -> None:
    assert "sk-abcdefgh123" not in clean_base_url("http://[::1/sk-abcdefgh123")


def test_simulated_identities_ignore_the_simulator_port() -> None:
    preset = load_preset("cometapi")
    a, b = (
        Target(
            contract=preset,
            contract_path=None,
            secret="k",
            secret_source="test",
            model="m",
            simulated=True,
        )
        for _ in range(2)
    )
    assert identity_of(a) == identity_of(b) == TargetIdentity.simulated_for("m")
    assert identity_of(a).key == "simulated model=m"


def test_a_real_identity_is_its_clean_url_and_model() -> None:
    target = Target(
        contract=load_preset("cometapi"),
        contract_path=None,
        secret="k",
        secret_source="test",
        model="gpt-4.1-nano",
        simulated=False,
    )
    assert identity_of(target).key == "https://api.cometapi.com/v1 model=gpt-4.1-nano"


@pytest.mark.parametrize(
    "identity",
    [TargetIdentity.simulated_for("m"), TargetIdentity.real("https://a.example/v1", "m")],
    ids=["simulated", "real"],
)
def test_identities_round_trip_through_their_dict(identity: TargetIdentity) -> None:
    assert TargetIdentity.from_dict(identity.to_dict()) == identity


@pytest.mark.parametrize(
    "data",
    [None, {}, {"simulated": "no", "model": "m"}, {"simulated": False, "model": "m"}, []],
    ids=["none", "empty", "bad-flag", "real-without-url", "not-an-object"],
)
def test_an_unusable_target_object_is_no_identity(data: object) -> None:
    assert TargetIdentity.from_dict(data) is None
