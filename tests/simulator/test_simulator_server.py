"""SimulatorServer: a free port, readiness, clean and bounded stop, clear errors."""

from __future__ import annotations

import re
import socket

import httpx2
import pytest
from sim_helpers import AUTH, CHAT, chat_body

from chatcontract.errors import SimulatorError
from chatcontract.simulator import SimulatorServer, create_app


def test_port_zero_picks_a_free_port_and_serves_at_once():
    with SimulatorServer() as server:
        assert server.port > 0
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", server.base_url)
        assert server.running
        response = httpx2.post(
            server.base_url + "/chat/completions", json=chat_body(), headers=AUTH
        )
        assert response.status_code == 200
    assert not server.running


def test_settings_are_exposed_and_passed_to_the_app():
    with SimulatorServer(
        flavor="openai", scenario="rate_limit", api_key="sk-test-key-00001"
    ) as server:
        assert (server.flavor, server.scenario, server.api_key) == (
            "openai",
            "rate_limit",
            "sk-test-key-00001",
        )
        response = httpx2.post(
            server.root_url + CHAT,
            json=chat_body(),
            headers={"Authorization": "Bearer sk-test-key-00001"},
        )
    assert response.status_code == 429
    assert "x-request-id" in response.headers


def test_a_given_app_is_served_as_is():
    app = create_app(scenario="server_error")
    with SimulatorServer(app=app) as server:
        assert server.app is app
        assert (
            httpx2.post(server.root_url + CHAT, json=chat_body(), headers=AUTH).status_code == 500
        )


def test_a_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            SimulatorError, match=rf"port {port} on 127\.0\.0\.1 is in use: pick another"
        ):
            SimulatorServer(port=port).start()


def test_an_out_of_range_port_is_a_clear_error():
    with pytest.raises(SimulatorError, match="between 0 and 65535"):
        SimulatorServer(port=70000).start()


def test_an_unknown_scenario_is_refused_before_binding():
    with pytest.raises(SimulatorError, match=r"unknown scenario 'nope'.*--list-scenarios"):
        SimulatorServer(scenario="nope")


def test_an_unknown_flavor_is_refused():
    with pytest.raises(SimulatorError, match="unknown flavor 'azure'"):
        SimulatorServer(flavor="azure")


def test_a_server_starts_once():
    server = SimulatorServer().start()
    try:
        with pytest.raises(SimulatorError, match="already started"):
            server.start()
    finally:
        server.stop()


def test_stop_is_idempotent_and_safe_before_start():
    server = SimulatorServer()
    server.stop()
    server.start()
    server.stop()
    server.stop()
    assert not server.running


def test_repr_names_the_url_and_state():
    with SimulatorServer() as server:
        assert repr(server) == f"SimulatorServer('{server.base_url}', flavor='cometapi', running)"
