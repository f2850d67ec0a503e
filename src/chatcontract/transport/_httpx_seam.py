"""The one place chatcontract reaches into httpx2 privately: its connection pool, the
lower-cased names of its headers and the parsed parts of its URLs.

httpx2's ``HTTPTransport`` builds an httpcore2 pool without a ``network_backend`` argument and
exposes no pool. Phase timings (DNS, connect, TLS) and the call deadline on every socket read
need our network backend under that pool, and replacing a stale keep-alive needs its idle
connections; both go through the two private attributes named here and nothing else:
``transport._pool`` and ``pool._network_backend``. Everything past them (httpcore2's
``NetworkBackend``, connection ``is_idle``/``close``) is public. The instrumented transports
read a few request and response headers on every call: ``Headers._list`` already holds each
name lower-cased, which the public ``Headers.raw`` and ``Headers.get`` do not give in one
pass. They also read each request's URL (its path, and the URL without its query): a client
calls the same few URLs over and over, so what is read of one is remembered by
``URL._uri_reference``, the tuple of its parsed parts, which ``str(url)`` and ``url.path``
rebuild on every call.

``tests/transport/test_httpx_seam.py`` fails loudly when an httpx2 or httpcore2 upgrade moves
either attribute. At run time a missing seam is no error: the backend is simply not installed,
and the transport times connect and TLS from httpcore2's public ``trace`` extension instead (no
DNS phase), rather than reporting wrong timings.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BACKEND_ATTRIBUTE",
    "HEADER_LIST_ATTRIBUTE",
    "POOL_ATTRIBUTE",
    "URI_ATTRIBUTE",
    "header_items",
    "lowered_headers",
    "network_backend",
    "pool_of",
    "set_network_backend",
    "url_key",
]

#: The private attribute of ``httpx2.HTTPTransport`` holding its httpcore2 pool.
POOL_ATTRIBUTE = "_pool"
#: The private attribute of an httpcore2 pool holding its network backend.
BACKEND_ATTRIBUTE = "_network_backend"
#: The private attribute of ``httpx2.Headers`` holding its items as
#: ``(raw name, lower-case name, value)`` bytes.
HEADER_LIST_ATTRIBUTE = "_list"
#: The private attribute of ``httpx2.URL`` holding its parsed parts (a named tuple of texts).
URI_ATTRIBUTE = "_uri_reference"


def header_items(headers: object) -> list[tuple[bytes, bytes, bytes]] | None:
    """An ``httpx2.Headers``' own ``(raw name, lower-case name, value)`` items (not a copy:
    read them only), or None without the seam."""
    items = getattr(headers, HEADER_LIST_ATTRIBUTE, None)
    return items if type(items) is list else None


def lowered_headers(headers: object) -> dict[bytes, bytes] | None:
    """``headers``' values by lower-case name (bytes), read in one pass; None when a
    name repeats (its values are to be joined) or without the seam."""
    items = getattr(headers, HEADER_LIST_ATTRIBUTE, None)
    if type(items) is not list:
        return None
    try:  # (a comprehension: quicker than dict() of itemgetter pairs, measured)
        found = {lower: value for _, lower, value in items}
    except (TypeError, ValueError):  # not the (raw, lower, value) items of httpx2
        return None
    return found if len(found) == len(items) else None


def url_key(url: object) -> tuple[Any, ...] | None:
    """A key that equals another URL's exactly when both are the same URL: an
    ``httpx2.URL``'s parsed parts (a tuple of texts, hashable); None without the seam."""
    parts = getattr(url, URI_ATTRIBUTE, None)
    return parts if isinstance(parts, tuple) else None


def pool_of(transport: object) -> Any:
    """The httpcore2 pool under ``transport``, looking through wrappers that keep the transport
    they wrap in ``_inner`` (ours: the instrumented and guard transports); None when none."""
    for _ in range(8):  # wrappers nest a level or two; never follow a cycle
        pool = getattr(transport, POOL_ATTRIBUTE, None)
        if pool is not None:
            return pool
        transport = getattr(transport, "_inner", None)
        if transport is None:
            return None
    return None


def network_backend(transport: object) -> Any:
    """The network backend of ``transport``'s own pool, or None without the seam."""
    pool = getattr(transport, POOL_ATTRIBUTE, None)
    return getattr(pool, BACKEND_ATTRIBUTE, None)


def set_network_backend(transport: object, backend: object) -> bool:
    """Put ``backend`` under ``transport``'s own pool; False (nothing changed) when the
    transport has no such pool (a proxy, a mock, or an httpx2 that moved the attributes)."""
    pool = getattr(transport, POOL_ATTRIBUTE, None)
    if pool is None or not hasattr(pool, BACKEND_ATTRIBUTE):
        return False
    setattr(pool, BACKEND_ATTRIBUTE, backend)
    return True
