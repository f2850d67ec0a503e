"""A faithful CometAPI (and OpenAI) chat completions stand-in, with every fault on demand.

Build the ASGI app with ``create_app`` (serve it in-process through ``httpx2.ASGITransport``), or
run it on a real socket with ``SimulatorServer`` / ``serve``. Pick a fault per server
(``scenario=``) or per request (header ``X-Chatcontract-Scenario``); ``SCENARIOS`` lists them all.

Example::

    from chatcontract.simulator import SimulatorServer

    with SimulatorServer(flavor="cometapi") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Reply with exactly: pong"}]
        )
"""

from __future__ import annotations

from chatcontract.simulator.app import (
    DEFAULT_API_KEY,
    DELAY_HEADER,
    SCENARIO_HEADER,
    SimulatorApp,
    SimulatorSettings,
    create_app,
)
from chatcontract.simulator.catalogue import Catalogue, ModelInfo
from chatcontract.simulator.connection import SimulatedDisconnectError
from chatcontract.simulator.flavors import (
    COMETAPI,
    FLAVOR_NAMES,
    FLAVORS,
    OPENAI,
    Flavor,
    FlavorName,
)
from chatcontract.simulator.scenarios import SCENARIO_NAMES, SCENARIOS, Scenario
from chatcontract.simulator.server import SimulatorServer, serve

__all__ = [
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
