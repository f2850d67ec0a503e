"""Bare pass-through proxies, one per candidate stack: the floors of the gateway benchmark.

Each one does the least a gateway must: read the client's body, send it upstream with the
client's ``authorization`` and ``content-type``, and answer with the upstream's status, its
headers (less the hop-by-hop ones) and its body: read whole and sent with a ``Content-Length``
when it is JSON, forwarded chunk by chunk as the bytes arrive when it is ``text/event-stream``.
No parsing, no policy, no metrics: whatever a stack costs here, the gateway built on it pays too.

Stacks (``STACKS``): the server, its HTTP parser and event loop, and the upstream client.

Run one (the benchmark starts them; the upstream is ``benchmarks/_gateway_upstream.py``)::

    python benchmarks/_gateway_floors.py uvicorn-httptools --port 8791 --upstream-port 8790
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

UPSTREAM_ENV = "BENCH_GATEWAY_UPSTREAM"
#: Headers a hop neither forwards upstream nor copies back (RFC 9110 §7.6.1, plus framing).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
        "date",
        "server",
    }
)
FORWARDED = (b"authorization", b"content-type")
EVENT_STREAM = "text/event-stream"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Stack:
    """One candidate: how it is served and which client goes upstream."""

    name: str
    server: str  # uvicorn | granian | aiohttp
    app: str  # the app object in this module
    client: str  # httpx2 | aiohttp
    http: str = ""  # uvicorn's parser (h11 | httptools) or granian's interface (asgi | rsgi)
    loop: str = "asyncio"  # asyncio | uvloop
    summary: str = ""


STACKS: dict[str, Stack] = {
    s.name: s
    for s in (
        Stack(
            name="starlette",
            server="uvicorn",
            app="starlette_app",
            client="httpx2",
            http="h11",
            summary="uvicorn (h11, asyncio) + Starlette + httpx2: the issue's reference point",
        ),
        Stack(
            name="uvicorn-h11",
            server="uvicorn",
            app="asgi_httpx2",
            client="httpx2",
            http="h11",
            summary="uvicorn (h11, asyncio) + raw ASGI + httpx2",
        ),
        Stack(
            name="uvicorn-h11-uvloop",
            server="uvicorn",
            app="asgi_httpx2",
            client="httpx2",
            http="h11",
            loop="uvloop",
            summary="uvicorn (h11, uvloop) + raw ASGI + httpx2",
        ),
        Stack(
            name="uvicorn-httptools",
            server="uvicorn",
            app="asgi_httpx2",
            client="httpx2",
            http="httptools",
            loop="uvloop",
            summary="uvicorn (httptools, uvloop) + raw ASGI + httpx2",
        ),
        Stack(
            name="uvicorn-httptools-aiohttp",
            server="uvicorn",
            app="asgi_aiohttp",
            client="aiohttp",
            http="httptools",
            loop="uvloop",
            summary="uvicorn (httptools, uvloop) + raw ASGI + aiohttp client",
        ),
        Stack(
            name="uvicorn-httptools-httpx2-aiohttp",
            server="uvicorn",
            app="asgi_httpx2_over_aiohttp",
            client="httpx2 over aiohttp",
            http="httptools",
            loop="uvloop",
            summary="uvicorn (httptools, uvloop) + raw ASGI + httpx2 API on aiohttp",
        ),
        Stack(
            name="granian-asgi",
            server="granian",
            app="asgi_httpx2",
            client="httpx2",
            http="asgi",
            loop="uvloop",
            summary="granian (ASGI, uvloop) + raw ASGI + httpx2",
        ),
        Stack(
            name="granian-rsgi",
            server="granian",
            app="rsgi_httpx2",
            client="httpx2",
            http="rsgi",
            loop="uvloop",
            summary="granian (RSGI, uvloop) + httpx2",
        ),
        Stack(
            name="aiohttp",
            server="aiohttp",
            app="aiohttp_app",
            client="aiohttp",
            loop="uvloop",
            summary="aiohttp server (uvloop) + aiohttp client",
        ),
    )
}


def _upstream() -> str:
    return os.environ[UPSTREAM_ENV]


# --- httpx2 upstream ----------------------------------------------------------------------------

#: One pooled upstream client per worker process, made on first use (keys: "httpx2", "aiohttp").
_CLIENTS: dict[str, Any] = {}


def _httpx2() -> Any:
    if "httpx2" not in _CLIENTS:
        import httpx2

        _CLIENTS["httpx2"] = httpx2.AsyncClient(base_url=_upstream(), timeout=30.0)
    return _CLIENTS["httpx2"]


def _copy_back(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.decode("latin-1").lower() not in HOP_BY_HOP]


async def _read_body(receive: Receive) -> bytes:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def asgi_httpx2(scope: Scope, receive: Receive, send: Send) -> None:
    """Raw ASGI pass-through with an httpx2 ``AsyncClient`` upstream."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = await _read_body(receive)
    client = _httpx2()
    headers = [(k, v) for k, v in scope["headers"] if k in FORWARDED]
    request = client.build_request("POST", scope["path"], content=body, headers=headers)
    response = await client.send(request, stream=True)
    try:
        out = _copy_back(response.headers.raw)
        if response.headers.get("content-type", "").startswith(EVENT_STREAM):
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        data = await response.aread()
        out.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": data})
    finally:
        await response.aclose()


# --- aiohttp upstream ---------------------------------------------------------------------------


def _aiohttp() -> Any:
    if "aiohttp" not in _CLIENTS:
        import aiohttp

        _CLIENTS["aiohttp"] = aiohttp.ClientSession(
            base_url=_upstream(), auto_decompress=False, timeout=aiohttp.ClientTimeout(total=30)
        )
    return _CLIENTS["aiohttp"]


async def asgi_aiohttp(scope: Scope, receive: Receive, send: Send) -> None:
    """Raw ASGI pass-through with an aiohttp ``ClientSession`` upstream."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = await _read_body(receive)
    headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in FORWARDED}
    async with _aiohttp().post(scope["path"], data=body, headers=headers) as response:
        out = _copy_back(list(response.raw_headers))
        if response.content_type == EVENT_STREAM:
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        data = await response.read()
        out.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        await send({"type": "http.response.body", "body": data})


# --- httpx2's API on aiohttp's wire ------------------------------------------------------------


def _httpx2_over_aiohttp() -> Any:
    """An ``httpx2.AsyncClient`` on the gateway's own upstream wire: chatcontract's
    production ``AiohttpTransport`` (an aiohttp session: C parser, C URL), so this floor is the
    same wire ``chatcontract gateway`` runs on, without the hooks that time a call's phases
    (``hooks="none"``): only the gateway's observer reads them, and a bare proxy has none."""
    if "httpx2" not in _CLIENTS:
        import httpx2

        from chatcontract.transport._aiohttp import AiohttpTransport

        _CLIENTS["httpx2"] = httpx2.AsyncClient(
            base_url=_upstream(), transport=AiohttpTransport(hooks="none"), timeout=30.0
        )
    return _CLIENTS["httpx2"]


async def asgi_httpx2_over_aiohttp(scope: Scope, receive: Receive, send: Send) -> None:
    """Raw ASGI pass-through, httpx2's client API on an aiohttp transport."""
    _httpx2_over_aiohttp()
    await asgi_httpx2(scope, receive, send)


# --- granian RSGI -------------------------------------------------------------------------------


async def rsgi_httpx2(scope: Any, proto: Any) -> None:
    """Granian RSGI pass-through with an httpx2 ``AsyncClient`` upstream."""
    body = await proto()
    client = _httpx2()
    headers = [(k, v) for k in ("authorization", "content-type") if (v := scope.headers.get(k))]
    request = client.build_request("POST", scope.path, content=body, headers=headers)
    response = await client.send(request, stream=True)
    try:
        out = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in _copy_back(response.headers.raw)
        ]
        if response.headers.get("content-type", "").startswith(EVENT_STREAM):
            transport = proto.response_stream(response.status_code, out)
            async for chunk in response.aiter_raw():
                await transport.send_bytes(chunk)
            return
        data = await response.aread()
        proto.response_bytes(response.status_code, out, data)
    finally:
        await response.aclose()


# --- uvicorn + Starlette ------------------------------------------------------------------------


def _starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    async def chat(request: Request) -> Response:
        body = await request.body()
        client = _httpx2()
        headers = [(k, v) for k, v in request.headers.raw if k in FORWARDED]
        upstream = client.build_request("POST", request.url.path, content=body, headers=headers)
        response = await client.send(upstream, stream=True)
        out = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in _copy_back(response.headers.raw)
        }
        if response.headers.get("content-type", "").startswith(EVENT_STREAM):
            return StreamingResponse(
                response.aiter_raw(),
                status_code=response.status_code,
                headers=out,
                background=BackgroundTask(response.aclose),
            )
        data = await response.aread()
        await response.aclose()
        return Response(data, status_code=response.status_code, headers=out)

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


# --- aiohttp server -----------------------------------------------------------------------------


def _aiohttp_app() -> Any:
    from aiohttp import web

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k in ("Authorization", "Content-Type") if (v := request.headers.get(k))}
        async with _aiohttp().post(request.path, data=body, headers=headers) as response:
            out = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in _copy_back(list(response.raw_headers))
            }
            if response.content_type == EVENT_STREAM:
                stream = web.StreamResponse(status=response.status, headers=out)
                await stream.prepare(request)
                async for chunk in response.content.iter_any():
                    await stream.write(chunk)
                await stream.write_eof()
                return stream
            data = await response.read()
            return web.Response(body=data, status=response.status, headers=out)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


def __getattr__(name: str) -> Any:
    # Built on first access so that importing this module (granian's workers do) stays cheap
    # and each stack imports only its own libraries.
    if name == "starlette_app":
        return _starlette()
    raise AttributeError(name)


# --- serving ------------------------------------------------------------------------------------


def serve(stack: Stack, host: str, port: int) -> None:
    """Serve ``stack`` on ``host:port`` until SIGTERM or SIGINT (blocks)."""
    if stack.server == "uvicorn":
        import uvicorn

        uvicorn.run(
            f"_gateway_floors:{stack.app}",
            host=host,
            port=port,
            http=stack.http,
            loop=stack.loop,
            lifespan="auto",
            access_log=False,
            log_level="warning",
            server_header=False,
            date_header=False,
        )
        return
    if stack.server == "granian":
        here = os.path.dirname(os.path.abspath(__file__))
        os.execv(  # granian's own CLI: its supervisor and its worker form the process tree
            sys.executable,
            [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                stack.http,
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                "1",
                "--loop",
                stack.loop,
                "--no-ws",
                "--log-level",
                "warning",
                "--working-dir",
                here,
                f"_gateway_floors:{stack.app}",
            ],
        )
    if stack.server == "aiohttp":
        from aiohttp import web

        if stack.loop == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        else:
            import asyncio

            loop = asyncio.new_event_loop()
        web.run_app(_aiohttp_app(), host=host, port=port, access_log=None, print=None, loop=loop)
        return
    raise ValueError(f"unknown server {stack.server!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", choices=sorted(STACKS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    args = parser.parse_args()
    os.environ[UPSTREAM_ENV] = f"http://127.0.0.1:{args.upstream_port}"
    serve(STACKS[args.stack], args.host, args.port)


if __name__ == "__main__":
    main()
