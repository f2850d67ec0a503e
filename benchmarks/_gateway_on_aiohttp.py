"""``chatcontract gateway`` with its upstream transport on aiohttp: the recommendation, measured.

The gateway's own code unchanged (``GatewayState``, ``create_app``, the same uvicorn server
configuration), only the inner transport under chatcontract's instrumented one is
``AiohttpTransport`` (httpx2's interface on aiohttp's wire; see that module for what it leaves
out). Measure it against the floor of the same stack::

    .venv/bin/python benchmarks/bench_gateway.py --only uvicorn-httptools \\
        --gateway-floor uvicorn-httptools-httpx2-aiohttp --gateway-cmd \\
        "python _gateway_on_aiohttp.py --contract {contract} --listen 127.0.0.1:{port}"
"""

from __future__ import annotations

import argparse

from _aiohttp_transport import AiohttpTransport
from chatcontract.cli.gateway_cmd import parse_listen
from chatcontract.contract import load
from chatcontract.gateway import GatewayState, create_app
from chatcontract.gateway.server import bind, serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contract", required=True)
    parser.add_argument("--listen", default="127.0.0.1:8788")
    args = parser.parse_args()
    host, port = parse_listen(args.listen)
    state = GatewayState(load(args.contract), transport=AiohttpTransport())
    serve(create_app(state), bind(host, port))


if __name__ == "__main__":
    main()
