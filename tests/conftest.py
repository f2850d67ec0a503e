"""Fixtures shared across the suite: a real simulator on 127.0.0.1, a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from chatcontract.simulator import SimulatorServer

# ``make mutate`` runs a test folder once per mutant: there, property tests draw a few
# reproducible examples (HYPOTHESIS_PROFILE=mutation, set by scripts/mutate.py) instead of
# hundreds; the direct tests do the killing. Normal runs keep Hypothesis' example counts but
# not its 200 ms per-example deadline: that is a timed assertion, and on a loaded CI machine
# it fails a correct test (a property's speed is judged in benchmarks/, never here).
settings.register_profile("mutation", max_examples=20, derandomize=True, deadline=None)
settings.register_profile("suite", deadline=None)
settings.load_profile("mutation" if os.environ.get("HYPOTHESIS_PROFILE") == "mutation" else "suite")

_KEY_VARIABLES = (
    "COMETAPI_KEY",
    "COMETAPI_API_KEY",
    "COMET_API_KEY",
    "OPENAI_API_KEY",
    "CHATCONTRACT_MODEL",
    "CHATCONTRACT_KILL_SWITCH",
)


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may pick up a real key from the developer's shell and reach a real provider."""
    for name in _KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_real_documentation(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may fetch a provider's real documentation (a passing validate fingerprints
    the contract's reference_url): only loopback URLs are fetched, others are unreachable."""
    import urllib.parse

    from chatcontract.ops import review
    from chatcontract.ops._docs_fetch import DocumentUnreachable

    real = review.fetch_document

    def loopback_only(url: str, **options: object) -> object:
        if urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            return DocumentUnreachable(url=url, reason="tests fetch loopback URLs only")
        return real(url, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(review, "fetch_document", loopback_only)


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorServer]:
    """A cometapi-flavoured simulator on 127.0.0.1 for the whole session."""
    with SimulatorServer(flavor="cometapi") as server:
        yield server


@pytest.fixture(scope="session")
def openai_simulator() -> Iterator[SimulatorServer]:
    """An openai-flavoured simulator on 127.0.0.1 for the whole session."""
    with SimulatorServer(flavor="openai") as server:
        yield server
