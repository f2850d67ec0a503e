"""``chatcontract gateway``: serve the contract to any language as an OpenAI-compatible sidecar."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from chatcontract.contract import DEFAULT_PATH
from chatcontract.errors import UsageError

__all__ = ["parse_keys", "parse_listen", "register", "run"]

# The gateway's defaults, repeated here so that `gateway --help` loads no server (a test
# checks they equal chatcontract.gateway's).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8788
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

_DESCRIPTION = f"""\
Serve POST /v1/chat/completions and GET /v1/models, OpenAI-compatible, in front of the
contract's routes: any OpenAI SDK works by pointing its base URL at http://HOST:PORT/v1.
Every call gets the contract's classification, retries and fallbacks by failure class, one
deadline, budgets, breakers and mid-stream recovery. The provider key comes from the
contract's environment variables; clients authenticate with gateway keys (--keys-env),
required when --listen is not a loopback address and never forwarded.

Per request: "fallbacks": [...] in the body (models or routes of the contract only), header
x-chatcontract-deadline-ms: N. Default contract: ./{DEFAULT_PATH}.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``gateway`` command to the CLI."""
    parser = sub.add_parser(
        "gateway",
        help="serve the contract to any language as an OpenAI-compatible sidecar",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--contract",
        default=DEFAULT_PATH,
        metavar="FILE",
        help=f"contract file (default: ./{DEFAULT_PATH})",
    )
    parser.add_argument(
        "--listen",
        default=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
        metavar="HOST:PORT",
        help=f"address to serve on (default: {DEFAULT_HOST}:{DEFAULT_PORT}; port 0: a free one)",
    )
    parser.add_argument(
        "--keys-env",
        default=None,
        metavar="VAR",
        help="environment variable holding the gateway keys, comma-separated; clients send "
        "Authorization: Bearer KEY (required when --listen is not loopback)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help=f"largest request body accepted, larger gets 413 (default: {DEFAULT_MAX_BODY_BYTES})",
    )
    parser.set_defaults(handler=run)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8788`` for IPv6) as a host and a port."""
    host, colon, port = text.strip().rpartition(":")
    number = port.isascii() and port.isdigit() and len(port) <= 5
    if not colon or not host or not number or int(port) > 65535:
        raise UsageError(
            f"--listen must be HOST:PORT, e.g. 127.0.0.1:8788 or [::1]:8788; got {text!r}"
        )
    return host.strip("[]"), int(port)


def parse_keys(variable: str, environ: Mapping[str, str]) -> tuple[str, ...]:
    """The gateway keys in ``$variable`` (comma-separated, blanks ignored)."""
    keys = tuple(key.strip() for key in environ.get(variable, "").split(",") if key.strip())
    if not keys:
        raise UsageError(
            f"--keys-env {variable}: ${variable} is not set or holds no key; export "
            f"{variable}=KEY1,KEY2 (the keys clients send as Authorization: Bearer KEY)"
        )
    return keys


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; 0 on a clean stop."""
    from chatcontract.contract import load
    from chatcontract.gateway import GatewayState, create_app
    from chatcontract.gateway.server import bind, is_loopback, serve

    host, port = parse_listen(args.listen)
    if args.max_body_bytes < 1:
        raise UsageError(f"--max-body-bytes must be a positive number, got {args.max_body_bytes}")
    keys: tuple[str, ...] = ()
    if args.keys_env is not None:
        keys = parse_keys(args.keys_env, os.environ)
    elif not is_loopback(host):
        raise UsageError(
            f"--listen {args.listen} is not a loopback address: clients must authenticate; "
            "add --keys-env VAR with the gateway keys, comma-separated, in $VAR"
        )
    contract = load(args.contract)
    state = GatewayState(contract, keys=keys, max_body_bytes=args.max_body_bytes)
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    auth = f"gateway keys from ${args.keys_env}" if keys else "none (loopback only)"

    def banner() -> None:
        _say(f"chatcontract gateway listening on http://{shown}:{bound}/v1")
        for route in state.routes:
            source = f"${route.secret_source}"
            _say(f"  route {route.name}: {route.model} at {route.base_url} (key: {source})")
        _say(f"  auth:  {auth}")
        _say("Press Ctrl-C to stop.")

    serve(create_app(state), sock, on_ready=banner)
    _say("chatcontract gateway stopped")
    return 0
