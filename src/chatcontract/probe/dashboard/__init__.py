"""The contract-health dashboard: one HTML page, its script, stylesheet and icon.

The page is organised around the dependency rather than around traffic: is the contract still
honoured (schema-valid rate, missing paths, last validation verdict, drift), who has to act
(failures split by kind, auth and quota separated from rate limits), and is the contract itself
still current (days until the review is due). It reads everything from ``api/summary``, which
the probe app serves next to these routes, and refreshes itself every 30 s (``?refresh=<s>``
overrides the period).

Every asset ships inside the package and is served by the process itself: the page works
offline, and its Content-Security-Policy forbids the browser from fetching anything outside the
origin. URLs in the page are relative, so the routes can be mounted under a prefix.

Example::

    from starlette.applications import Starlette

    app = Starlette(routes=[*dashboard_routes(), Route("/api/summary", summary)])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["ASSET_MEDIA_TYPES", "dashboard_routes"]

#: Files served under ``static/``, by name, with their media type. Nothing else is served.
ASSET_MEDIA_TYPES: dict[str, str] = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_PAGE = "index.html"
_PAGE_MEDIA_TYPE = "text/html; charset=utf-8"
# The icon is small enough to live here, which keeps package data to the page, script and style.
_INLINE_ASSETS = {
    "favicon.svg": (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
        b'<rect width="32" height="32" rx="7" fill="#1f4e79"/>'
        b'<path d="M9 16.5l4.5 4.5L23 11" fill="none" stroke="#fff" stroke-width="3.5" '
        b'stroke-linecap="round" stroke-linejoin="round"/></svg>\n'
    ),
}

# The page may load only what this process serves. Inline script and style stay forbidden, so
# even a bug that turned JSON text into markup could not run it.
_CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time (cheaply, by ETag) so an upgraded package is picked up at once.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def _asset(name: str, media_type: str) -> _Asset:
    """A packaged file (or an inline asset), read once per process."""
    inline = _INLINE_ASSETS.get(name)
    body = inline if inline is not None else resources.files(__name__).joinpath(name).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return _Asset(body=body, media_type=media_type, etag=etag)


def _respond(request: Request, asset: _Asset, *, extra: dict[str, str] | None = None) -> Response:
    headers = {**_COMMON_HEADERS, "ETag": asset.etag, **(extra or {})}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


async def _page(request: Request) -> Response:
    asset = _asset(_PAGE, _PAGE_MEDIA_TYPE)
    return _respond(request, asset, extra={"Content-Security-Policy": _CONTENT_SECURITY_POLICY})


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = ASSET_MEDIA_TYPES.get(name)
    if media_type is None:
        return Response("not found\n", status_code=404, media_type="text/plain")
    return _respond(request, _asset(name, media_type))


async def _favicon(request: Request) -> Response:
    # Browsers and crawlers ask for /favicon.ico whatever the page links: answer, do not 404.
    return _respond(request, _asset("favicon.svg", ASSET_MEDIA_TYPES["favicon.svg"]))


def dashboard_routes() -> list[BaseRoute]:
    """The routes of the dashboard: ``/``, ``/static/{name}`` and ``/favicon.ico``.

    The page fetches ``api/summary`` relative to itself; the app mounting these routes serves it.
    """
    return [
        Route("/", _page, methods=["GET"], name="dashboard"),
        Route("/static/{name}", _static, methods=["GET"], name="dashboard_static"),
        Route("/favicon.ico", _favicon, methods=["GET"], name="dashboard_favicon"),
    ]
