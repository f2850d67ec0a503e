"""The simulator package's deliberate public surface."""

from __future__ import annotations

import chatcontract.simulator as simulator


def test_public_names_are_exactly_these():
    assert simulator.__all__ == [
        "COMETAPI",
        "DEFAULT_API_KEY",
        "DELAY_HEADER",
        "FLAVORS",
        "FLAVOR_NAMES",
        "OPENAI",
        "SCENARIOS",
        "SCENARIO_HEADER",
        "SCENARIO_NAMES",
        "Catalogue",
        "Flavor",
        "FlavorName",
        "ModelInfo",
        "Scenario",
        "SimulatedDisconnectError",
        "SimulatorApp",
        "SimulatorServer",
        "SimulatorSettings",
        "create_app",
        "serve",
    ]
    assert all(hasattr(simulator, name) for name in simulator.__all__)


def test_the_default_key_and_flavors_are_fixed():
    assert simulator.DEFAULT_API_KEY == "sk-chatcontract-local"
    assert simulator.FLAVOR_NAMES == ("cometapi", "openai")
    assert simulator.SCENARIO_NAMES[0] == "ok"
