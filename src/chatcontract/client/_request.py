"""An attempt's ``httpx2.Request``, built from the body's bytes and a per-route header template.

``client.build_request(..., json=body)`` merges the client's URL, headers, cookies and query
parameters, encodes the body and prepares the head on every call: half of it redoes, per
attempt, what is the same for every attempt on a route (the URL, ``Host``, the client's default
headers, the auth header). ``RequestTemplate`` asks ``build_request`` once per route for that
head, then builds each attempt's request from the body's bytes with ``httpx2.Request(...,
stream=ByteStream(content))`` (public API: no header is added to a request given a stream).

The result is the request ``build_request`` makes, byte for byte (method, URL, headers in their
order, body, extensions): ``tests/client/test_client_request.py`` compares the two, and fails
loudly if an httpx2 upgrade changes how ``build_request`` lays out a request. The template is
used only when nothing per call changes that head: no caller headers, no cookies held by the
client (a provider's ``Set-Cookie``); otherwise ``build_request`` runs as before.

``encode_json`` encodes a body as ``httpx2`` does for ``json=`` (the same bytes).
"""

from __future__ import annotations

import json
import logging
import operator
from typing import Any

import httpx2

from chatcontract._log import library_logger
from chatcontract.transport._httpx_seam import header_items

__all__ = ["RequestTemplate", "encode_json", "send_async", "send_sync"]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def encode_json(body: Any) -> bytes:
    """``body`` as JSON bytes, as ``httpx2`` encodes ``json=`` (compact, UTF-8, no NaN)."""
    return _dumps(body).encode("utf-8")


class RequestTemplate:
    """The head every ``POST`` of one route's JSON body shares (see the module docstring).

    Args:
        client: the route's httpx2 client (``Client`` or ``AsyncClient``).
        url: the route's URL.
        headers: the headers every attempt on the route sends (its auth header).
    """

    __slots__ = ("_headers", "_length_at", "_length_name", "url")

    def __init__(
        self, client: httpx2.Client | httpx2.AsyncClient, url: str, headers: dict[str, str]
    ) -> None:
        probe = client.build_request("POST", url, json={}, headers=headers)
        if probe.url.userinfo:  # ``send`` would add basic auth from it: not for a template
            raise ValueError("a URL carrying credentials has no request template")
        raw = probe.headers.raw
        lengths = [i for i, (name, _) in enumerate(raw) if name.lower() == b"content-length"]
        if len(lengths) != 1:
            raise ValueError("httpx2 laid out a JSON request without one Content-Length")
        self.url = probe.url
        self._headers = probe.headers
        self._length_at = lengths[0]
        self._length_name = raw[lengths[0]][0].decode("ascii")

    def build(self, content: bytes, extensions: dict[str, Any]) -> httpx2.Request:
        """The request carrying ``content`` (JSON bytes) with ``extensions`` (the timeout's
        included, as ``build_request`` puts it)."""
        request = httpx2.Request(
            "POST",
            self.url,
            headers=self._headers,  # copied by ``Request``: a list copy, nothing normalised
            stream=httpx2.ByteStream(content),
            extensions=extensions,
        )
        # The length is replaced where it stands in the request's own copy: as one item when
        # the header seam holds (``headers[name] = value`` encodes, lowers and scans every
        # name), else as httpx2 sets a header.
        headers = request.headers
        length = str(len(content))
        items = header_items(headers)
        at = self._length_at
        if items is not None and len(items) > at and items[at][1] == b"content-length":
            items[at] = (items[at][0], b"content-length", length.encode("ascii"))
        else:
            headers[self._length_name] = length
        request.read()  # as ``build_request`` leaves it: ``request.content`` is readable
        return request


# -- sending it -------------------------------------------------------------------------------
#
# ``client.send(request)`` runs the request through the client's auth flow, redirect loop,
# event hooks and mounts, and wraps the response stream to time it. A route's client here has
# none of those (no auth, no redirects followed, no hooks, no mounts: one transport, the
# route's instrumented stack), so an attempt built from a template goes to that transport
# directly and gets from the client only what ``send`` would still do: refuse once closed,
# the response's request, the cookies it sets, the ``httpx2`` log line.

_logger = library_logger("httpx2")
_CLOSED = "Cannot send a request, as the client has been closed."
#: The headers ``Cookies.extract_cookies`` reads (lower-case): without either it does nothing.
_COOKIE_HEADERS = frozenset({b"set-cookie", b"set-cookie2"})
_lower_name = operator.itemgetter(1)  # of a header item: (raw name, lower-case name, value)


def _received(
    client: httpx2.Client | httpx2.AsyncClient, request: httpx2.Request, response: httpx2.Response
) -> None:
    response.request = request
    if _may_set_cookies(response.headers):
        client.cookies.extract_cookies(response)
    if _logger.isEnabledFor(logging.INFO):  # the line's fields are read only for a log
        _logger.info(
            'HTTP Request: %s %s "%s %d %s"',
            request.method,
            request.url,
            response.http_version,
            response.status_code,
            response.reason_phrase,
        )


def _may_set_cookies(headers: httpx2.Headers) -> bool:
    """Whether the response has a ``Set-Cookie`` or ``Set-Cookie2`` header, which is all
    ``extract_cookies`` looks for before it does anything (True without the header seam: let
    httpx2 look). One pass over the names httpx2 already holds lower-cased, instead of its
    two ``in`` tests (each a list of every name, after every header was decoded once to
    find their encoding)."""
    items = header_items(headers)
    if items is None:
        return True
    return not _COOKIE_HEADERS.isdisjoint(map(_lower_name, items))


async def send_async(
    client: httpx2.AsyncClient,
    transport: httpx2.AsyncBaseTransport,
    request: httpx2.Request,
    *,
    stream: bool = False,
) -> httpx2.Response:
    """``await client.send(request, stream=stream)`` for a client whose only transport is
    ``transport`` and that has no auth, hooks or redirects to follow (see above)."""
    if client.is_closed:
        raise RuntimeError(_CLOSED)
    try:
        response = await transport.handle_async_request(request)
    except httpx2.RequestError as exc:
        exc.request = request
        raise
    _received(client, request, response)
    if not stream:
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
    return response


def send_sync(
    client: httpx2.Client,
    transport: httpx2.BaseTransport,
    request: httpx2.Request,
    *,
    stream: bool = False,
) -> httpx2.Response:
    """The sync twin of :func:`send_async`."""
    if client.is_closed:
        raise RuntimeError(_CLOSED)
    try:
        response = transport.handle_request(request)
    except httpx2.RequestError as exc:
        exc.request = request
        raise
    _received(client, request, response)
    if not stream:
        try:
            response.read()
        except BaseException:
            response.close()
            raise
    return response
