"""``chatcontract simulate`` through the real CLI entry point, and as a subprocess."""

from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from typing import IO

import httpx2
import pytest
from sim_helpers import AUTH, CHAT, chat_body

from chatcontract.cli import build_parser, main
from chatcontract.simulator import SCENARIO_NAMES, SCENARIOS


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["simulate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_scenarios_prints_one_line_per_scenario(capsys):
    code, out, _ = run_cli(capsys, "--list-scenarios")
    lines = out.splitlines()
    assert code == 0
    assert [line.split()[0] for line in lines] == list(SCENARIO_NAMES)
    assert all(len(line.split(None, 1)) == 2 for line in lines)


def test_an_unknown_scenario_is_one_line_and_exit_2(capsys):
    code, out, err = run_cli(capsys, "--scenario", "nope")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "unknown scenario 'nope'" in err
    assert "--list-scenarios" in err
    assert "Traceback" not in err


def test_a_port_in_use_is_one_line_and_exit_2(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_cli(capsys, "--port", str(port))
    assert code == 2
    assert err == (
        f"chatcontract: error: port {port} on 127.0.0.1 is in use: "
        "pick another with --port or stop the other process\n"
    )


def test_a_negative_delay_is_one_line_and_exit_2(capsys):
    code, _, err = run_cli(capsys, "--delay-ms", "-1", "--port", "0")
    assert code == 2
    assert err.count("\n") == 1
    assert "delay must be between 0" in err


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (("--time-scale", "fast"), None, "--time-scale must be a number such as 0.01"),
        (("--time-scale", "0"), None, "time scale must be a number from 0.001 to 100.0"),
        ((), "soon", "$CHATCONTRACT_SIMULATOR_TIME_SCALE must be a number such as 0.01"),
        ((), "1000", "time scale must be a number from 0.001 to 100.0, got 1000.0"),
        (("--after-tokens", "-1"), None, "after-tokens must be from 0 to 100000, got -1"),
    ],
    ids=["scale-word", "scale-zero", "env-word", "env-too-slow", "after-negative"],
)
def test_a_bad_time_scale_or_token_count_is_one_line_and_exit_2(
    capsys, monkeypatch, argv, env, expected
):
    if env is not None:
        monkeypatch.setenv("CHATCONTRACT_SIMULATOR_TIME_SCALE", env)
    code, out, err = run_cli(capsys, *argv, "--port", "0")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert expected in err
    assert "Traceback" not in err


def test_the_time_scale_comes_from_the_environment_and_the_flag_wins(monkeypatch):
    from chatcontract.cli.simulate import _time_scale

    monkeypatch.setenv("CHATCONTRACT_SIMULATOR_TIME_SCALE", "0.01")
    assert _time_scale(None) == 0.01
    assert _time_scale("0.5") == 0.5
    monkeypatch.delenv("CHATCONTRACT_SIMULATOR_TIME_SCALE")
    assert _time_scale(None) == 1.0


def test_an_unknown_flavor_is_an_argparse_error_with_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--flavor", "azure"])
    assert exc.value.code == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _line_reader(stream: IO[str]) -> queue.Queue[str]:
    """Lines of ``stream`` as they arrive, read by a daemon thread (so waits can be bounded)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_simulate_serves_as_a_subprocess_and_stops_cleanly(stop_signal):
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatcontract", "simulate", "--port", str(port), "--scenario", "ok"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines = _line_reader(proc.stdout)
    try:
        # Bounded waits, generous for a loaded machine (a healthy start takes about a second).
        banner = [lines.get(timeout=60)]
        while not banner[-1].startswith("Press Ctrl-C"):
            banner.append(lines.get(timeout=15))
        assert (
            banner[0].strip() == f"chatcontract simulator listening on http://127.0.0.1:{port}/v1"
        )
        assert any("flavor:   cometapi" in line for line in banner)
        assert any("api key:  sk-chatcontract-local" in line for line in banner)
        response = httpx2.post(
            f"http://127.0.0.1:{port}{CHAT}", json=chat_body(), headers=AUTH, timeout=15
        )
        assert response.json()["choices"][0]["message"]["content"] == "pong"
        proc.send_signal(stop_signal)
        proc.wait(timeout=15)
        assert lines.get(timeout=5).strip() == "chatcontract simulator stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()
    assert proc.returncode == 0


def _option_help(option: str) -> str:
    parser = build_parser(["simulate"])
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    (action,) = (a for a in sub.choices["simulate"]._actions if option in a.option_strings)
    return str(action.help)


def _scenario_words(text: str) -> set[str]:
    return set(re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", text))


def test_delay_help_names_every_scenario_the_delay_changes():
    named = _scenario_words(_option_help("--delay-ms"))
    timed = {s.name for s in SCENARIOS.values() if s.default_delay_ms or s.fault_window_ms}
    assert named - {"slow"} <= set(SCENARIO_NAMES)
    assert named | {"slow"} == timed


def test_after_tokens_help_names_every_stream_fault_by_its_scenario_name():
    named = _scenario_words(_option_help("--after-tokens"))
    struck = {
        s.name
        for s in SCENARIOS.values()
        if s.delivery.value in {"cut", "stall", "malformed", "inband_error"}
    }
    assert named == struck


@pytest.mark.parametrize(
    ("host", "warned"), [("0.0.0.0", True), ("127.0.0.1", False)], ids=["any", "loopback"]
)
def test_the_banner_warns_when_the_simulator_is_reachable_from_elsewhere(capsys, host, warned):
    from chatcontract.cli import simulate
    from chatcontract.simulator import SimulatorServer

    simulate._banner(SimulatorServer(host=host, port=0))  # not started: nothing is bound
    out = capsys.readouterr().out
    assert ("is not a loopback address: anyone who reaches it can call" in out) is warned
