"""The gateway's upstream wire: aiohttp under httpx2's API when aiohttp is installed.

The ``gateway`` extra installs aiohttp; ``docs/gateway-performance.md`` has the measurement
(0.42 CPU-ms per proxied request on aiohttp's wire against 0.63 on httpx2's own transport).
Without aiohttp the gateway runs on httpx2's transport, one per route, as ``ChatClient`` does.
Only the gateway calls this: ``ChatClient`` and ``instrument()`` keep httpx2's transport.
"""

from __future__ import annotations

import importlib.util

import httpx2

__all__ = ["has_aiohttp", "upstream_transport"]


def has_aiohttp() -> bool:
    """Whether aiohttp can be imported (without importing it)."""
    return importlib.util.find_spec("aiohttp") is not None


def upstream_transport() -> httpx2.AsyncBaseTransport | None:
    """One aiohttp transport shared by every route (one connection pool per host), or None:
    httpx2's own transport per route."""
    if not has_aiohttp():
        return None
    from chatcontract.transport._aiohttp import AiohttpTransport

    return AiohttpTransport()
