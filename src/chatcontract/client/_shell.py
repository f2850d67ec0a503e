"""What the sync and async client shells share besides ``ClientCore``: building an attempt's
request, the read-only properties and the repr. The shells add only the I/O calls."""

from __future__ import annotations

from typing import Generic, TypeVar

import httpx2

from chatcontract.contract import Contract

from ._core import ClientCore, PreparedCall
from ._guard import AttemptWatch
from ._plan import Send
from ._routes import Route

__all__ = ["ClientShell"]

H = TypeVar("H", httpx2.Client, httpx2.AsyncClient)


class ClientShell(Generic[H]):
    """The non-I/O half of ``ChatClient`` / ``AsyncChatClient`` (``H``: their httpx2 client)."""

    _core: ClientCore
    _http: dict[str, H]

    def _request(self, call: PreparedCall, step: Send) -> tuple[H, httpx2.Request, AttemptWatch]:
        route: Route = step.route
        client = self._http[route.name]
        watch = self._core.watch(step, stream=call.stream)
        request = client.build_request(
            "POST",
            route.url,
            json=call.body(route) if step.body is None else dict(step.body),
            headers=call.request_headers(route),
            timeout=self._core.timeout(step, stream=call.stream),
            extensions=self._core.extensions(step, watch),
        )
        return client, request, watch

    @property
    def contract(self) -> Contract:
        """The contract this client follows."""
        return self._core.contract

    @property
    def routes(self) -> tuple[Route, ...]:
        """Primary first, then the fallbacks (secrets hidden from their repr)."""
        return self._core.routes

    def __repr__(self) -> str:
        routes = ", ".join(f"{r.name}={r.model}@{r.base_url}" for r in self._core.routes)
        provider = self._core.contract.provider
        return f"{type(self).__name__}(provider={provider!r}, routes=[{routes}])"
