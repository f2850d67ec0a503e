"""``chatcontract gateway``: serve the contract to any language as an OpenAI-compatible sidecar."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

from chatcontract.contract import DEFAULT_PATH
from chatcontract.errors import UsageError

__all__ = ["parse_admin", "parse_keys", "parse_listen", "parse_workers", "register", "run"]

# The gateway's defaults, repeated here so that `gateway --help` loads no server (a test
# checks they equal chatcontract.gateway's).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8788
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_ADMIN = "127.0.0.1:9465"
MAX_WORKERS = 64
#: The admin port's paths, as --help and the banner name them (a test checks they are
#: chatcontract.gateway.admin.ADMIN_PATHS).
ADMIN_PATHS = ("/metrics", "/healthz", "/readyz", "/workers", "/kill-switch")

_DESCRIPTION = f"""\
Serve POST /v1/chat/completions and GET /v1/models, OpenAI-compatible, in front of the
contract's routes: any OpenAI SDK works by pointing its base URL at http://HOST:PORT/v1.
Every call gets the contract's classification, retries and fallbacks by failure class, one
deadline, budgets, breakers and mid-stream recovery. The provider key comes from the
contract's environment variables; clients authenticate with gateway keys (--keys-env),
required when --listen is not a loopback address and never forwarded.

Per request: "fallbacks": [...] in the body (models or routes of the contract only), header
x-chatcontract-deadline-ms: N. Default contract: ./{DEFAULT_PATH}.

Admin port (--admin, default {DEFAULT_ADMIN}, loopback only unless --admin-allow-remote):
GET /metrics, /healthz, /readyz, /workers; GET or POST /kill-switch with {{"on": true}}.
--workers N: N processes serve the same socket; budgets hold for all of them together.
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
    parser.add_argument(
        "--max-connections",
        default=None,
        metavar="N",
        help="client connections served at once, one more gets 503 (default: half the "
        "open-file limit less 64, so the process never runs out of file descriptors)",
    )
    parser.add_argument(
        "--admin",
        default=DEFAULT_ADMIN,
        metavar="HOST:PORT|off",
        help=f"admin port: {', '.join(ADMIN_PATHS)} (default: {DEFAULT_ADMIN}; off: none)",
    )
    parser.add_argument(
        "--admin-allow-remote",
        action="store_true",
        help="allow --admin on a non-loopback address (it has no authentication: firewall it)",
    )
    parser.add_argument(
        "--workers",
        default="1",
        metavar="N",
        help=f"worker processes serving the same socket, 1 to {MAX_WORKERS} (default: 1)",
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


def parse_admin(text: str, *, allow_remote: bool) -> tuple[str, int] | None:
    """``--admin``: ``HOST:PORT``, or None for ``off``; a non-loopback host needs
    ``allow_remote``."""
    from chatcontract.gateway.server import is_loopback

    if text.strip().lower() == "off":
        return None
    host, colon, port = text.strip().rpartition(":")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--admin must be HOST:PORT (e.g. {DEFAULT_ADMIN}) or off; got {text!r}")
    host = host.strip("[]")
    if not is_loopback(host) and not allow_remote:
        raise UsageError(
            f"--admin {text} is not a loopback address and the admin port has no "
            "authentication: use 127.0.0.1:PORT, or add --admin-allow-remote behind a firewall"
        )
    return host, int(port)


def parse_workers(text: str) -> int:
    """``--workers``: a whole number from 1 to ``MAX_WORKERS``."""
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_WORKERS:
        cores = os.cpu_count() or 1
        raise UsageError(
            f"--workers must be a whole number from 1 to {MAX_WORKERS} (one per core is a good "
            f"start: {min(cores, MAX_WORKERS)} here); got {text!r}"
        )
    return int(value)


def parse_max_connections(text: str | None) -> int | None:
    """``--max-connections``: a whole number from 1 to ``MAX_CONNECTIONS_LIMIT`` (None: the
    default, from the open-file limit)."""
    from chatcontract.gateway.state import MAX_CONNECTIONS_LIMIT, default_max_connections

    if text is None:
        return None
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_CONNECTIONS_LIMIT:
        raise UsageError(
            f"--max-connections must be a whole number from 1 to {MAX_CONNECTIONS_LIMIT} "
            f"(the default here is {default_max_connections()}, from the open-file limit; "
            f"raise that with ulimit -n for more); got {text!r}"
        )
    return int(value)


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
    admin = parse_admin(args.admin, allow_remote=args.admin_allow_remote)
    workers = parse_workers(args.workers)
    max_connections = parse_max_connections(args.max_connections)
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
    auth = f"gateway keys from ${args.keys_env}" if keys else "none (loopback only)"
    if workers > 1:
        from chatcontract.gateway.workers import serve_workers

        return serve_workers(
            contract,
            keys=keys,
            max_body_bytes=args.max_body_bytes,
            max_connections=max_connections,
            listen=(host, port),
            admin=admin,
            count=workers,
            auth=auth,
            say=_say,
        )
    registry, sinks = _metrics(contract) if admin is not None else (None, [])
    state = GatewayState(
        contract,
        keys=keys,
        max_body_bytes=args.max_body_bytes,
        max_connections=max_connections,
        telemetry_sinks=sinks,
    )
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    admin_server = None
    if admin is not None and registry is not None:
        try:
            admin_server = _start_admin(state, admin, registry)
        except BaseException:
            sock.close()
            raise

    def banner() -> None:
        _say(f"chatcontract gateway listening on http://{shown}:{bound}/v1")
        for route in state.routes:
            source = f"${route.secret_source}"
            _say(f"  route {route.name}: {route.model} at {route.base_url} (key: {source})")
        _say(f"  auth:  {auth}")
        if admin_server is not None:
            _say(f"  admin: {admin_server.root_url} ({' '.join(ADMIN_PATHS)})")
        _say("Press Ctrl-C to stop.")

    try:
        serve(create_app(state), sock, on_ready=banner)
    finally:
        if admin_server is not None:
            admin_server.stop()
    _say("chatcontract gateway stopped")
    return 0


def _metrics(contract: Any) -> tuple[Any, list[Any]]:
    """A registry and the ``PrometheusSink`` feeding it from every upstream call."""
    from prometheus_client import CollectorRegistry

    from chatcontract.telemetry import PrometheusSink

    registry = CollectorRegistry()
    return registry, [PrometheusSink(registry, contract=contract)]


def _start_admin(state: Any, admin: tuple[str, int], registry: Any) -> Any:
    """The admin port of a one-process gateway, serving (its gauges added to ``registry``)."""
    from chatcontract.gateway.admin import AdminApp, AdminServer, LocalAdmin, bind_admin
    from chatcontract.gateway.metrics import GatewayMetrics

    GatewayMetrics(registry, state)
    return AdminServer(AdminApp(LocalAdmin(state, registry)), bind_admin(*admin)).start()
