"""``AiohttpTransport``: httpx2's transport interface, sent through an aiohttp session.

httpx2's client API (requests, responses, streams) on aiohttp's wire (its C HTTP parser and
C URL type): the benchmark's candidate for the gateway's upstream. Enough for a healthy
upstream, NOT a production adapter: aiohttp's errors are not mapped to httpx2's exception
classes, httpx2's timeouts and the ``trace`` extension (connect and first-byte timings) are not
honoured, and the session is made on the first request (inside the serving event loop).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx2

#: Headers aiohttp would add on its own; httpx2 already set what the request needs.
_SKIP_AUTO = ("User-Agent", "Accept", "Accept-Encoding")


class _Body(httpx2.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.response.content.iter_any():
            yield chunk

    async def aclose(self) -> None:
        self.response.release()


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """Send httpx2 requests with one pooled ``aiohttp.ClientSession`` (made on first use)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        response = await self._session.request(
            request.method,
            str(request.url),
            data=body,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            skip_auto_headers=_SKIP_AUTO,
        )
        headers: Any = list(response.raw_headers)
        return httpx2.Response(response.status, headers=headers, stream=_Body(response))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
