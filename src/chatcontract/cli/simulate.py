"""``chatcontract simulate``: serve a local CometAPI (or OpenAI) stand-in with faults on demand."""

from __future__ import annotations

import argparse
import os
import sys

from chatcontract._listen import is_loopback
from chatcontract.errors import SimulatorError
from chatcontract.simulator import (
    DEFAULT_API_KEY,
    DELAY_HEADER,
    FLAVOR_NAMES,
    SCENARIO_HEADER,
    SCENARIO_NAMES,
    SCENARIOS,
    SimulatorServer,
    serve,
)

__all__ = ["register", "run"]

DEFAULT_PORT = 8787
#: The environment variable holding the default of --time-scale.
TIME_SCALE_ENV = "CHATCONTRACT_SIMULATOR_TIME_SCALE"

_DESCRIPTION = """\
Serve a faithful local stand-in for CometAPI's (or OpenAI's) chat completions API:
POST /v1/chat/completions (JSON and SSE streams) and GET /v1/models, with the provider's real
statuses, error bodies and headers. Pick a fault for the whole server with --scenario, or per
request with the header X-Chatcontract-Scenario: NAME (and X-Chatcontract-Delay-Ms: N for the
timing scenarios). Point any OpenAI-compatible client at the printed base URL and key.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` command to the CLI."""
    parser = sub.add_parser(
        "simulate",
        help="serve a local CometAPI/OpenAI stand-in with every fault on demand",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to bind (default: {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--flavor",
        choices=FLAVOR_NAMES,
        default="cometapi",
        help="whose behaviour to copy (default: cometapi)",
    )
    parser.add_argument(
        "--api-key",
        default=DEFAULT_API_KEY,
        metavar="KEY",
        help=f"the key the simulator accepts (default: {DEFAULT_API_KEY})",
    )
    parser.add_argument(
        "--scenario",
        default="ok",
        metavar="NAME",
        help="fault for every request (default: ok); see --list-scenarios",
    )
    parser.add_argument(
        "--delay-ms",
        type=int,
        default=None,
        metavar="N",
        help="the delay of slow, slow_first_token, stall_mid_stream, no_response and "
        "late_first_token, and the fault window of rate_limit_retry_after, "
        "rate_limit_retry_after_ms and flapping_outage (default: each scenario's own; per "
        "request: header X-Chatcontract-Delay-Ms)",
    )
    parser.add_argument(
        "--time-scale",
        default=None,
        metavar="F",
        help="multiply every delay, keep-alive interval, fault window and retry-after by F "
        f"(0.01: a 60 s outage lasts 0.6 s; default: ${TIME_SCALE_ENV} or 1; per request: "
        "header X-Chatcontract-Time-Scale)",
    )
    parser.add_argument(
        "--after-tokens",
        type=int,
        default=None,
        metavar="N",
        help="where cut_stream, stall_mid_stream, malformed_chunk and inband_error_chunk "
        "strike a stream: after N tokens (default: half way, inband_error_chunk after the "
        "first token; per request: header X-Chatcontract-After-Tokens)",
    )
    parser.add_argument(
        "--list-scenarios", action="store_true", help="list the scenarios, one per line, and exit"
    )
    parser.set_defaults(handler=run)


def _say(line: str) -> None:
    """One line to stdout, flushed at once (a supervisor may be waiting for the banner)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _list_scenarios() -> int:
    width = max(len(name) for name in SCENARIO_NAMES)
    for scenario in SCENARIOS.values():
        _say(f"{scenario.name:<{width}}  {scenario.summary}")
    return 0


def _banner(server: SimulatorServer) -> None:
    _say(f"chatcontract simulator listening on {server.base_url}")
    _say(f"  flavor:   {server.flavor}")
    _say(f"  scenario: {server.scenario} (per request: header {SCENARIO_HEADER}: NAME)")
    _say(f"  api key:  {server.api_key} (Authorization: Bearer KEY, or x-api-key: KEY)")
    if not is_loopback(server.host):
        _say(
            f"  warning:  {server.host} is not a loopback address: anyone who reaches it can "
            "call the simulator with the key above (a test stand-in; firewall it)"
        )
    _say(f"  delays:   header {DELAY_HEADER}: N overrides the scenario's delay")
    scale = server.app.settings.time_scale
    if scale != 1:
        _say(f"  time:     every duration x{scale:g}")
    _say("Press Ctrl-C to stop.")


def _time_scale(flag: str | None) -> float:
    """--time-scale, else $CHATCONTRACT_SIMULATOR_TIME_SCALE, else 1 (range checked by the app)."""
    text, source = flag, "--time-scale"
    if text is None:
        text, source = os.environ.get(TIME_SCALE_ENV, "").strip() or "1", f"${TIME_SCALE_ENV}"
    try:
        return float(text)
    except ValueError:
        raise SimulatorError(
            f"{source} must be a number such as 0.01 (100 times faster), got {text!r}"
        ) from None


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; 0 on a clean stop.

    Raises:
        SimulatorError: an unknown scenario, a bad delay, or a port that is in use.
    """
    if args.list_scenarios:
        return _list_scenarios()
    if args.scenario not in SCENARIOS:
        raise SimulatorError(
            f"unknown scenario {args.scenario!r}: run 'chatcontract simulate --list-scenarios' "
            "to see the valid names"
        )
    serve(
        flavor=args.flavor,
        api_key=args.api_key,
        scenario=args.scenario,
        delay_ms=args.delay_ms,
        time_scale=_time_scale(args.time_scale),
        after_tokens=args.after_tokens,
        host=args.host,
        port=args.port,
        on_ready=_banner,
    )
    _say("chatcontract simulator stopped")
    return 0
