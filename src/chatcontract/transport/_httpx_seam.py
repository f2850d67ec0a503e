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
pass (and a client sends the same names call after call: where each sits is remembered).
They also read each request's URL (its path, and the URL without its query): a client calls
the same few URLs over and over, so what is read of one is remembered by
``URL._uri_reference``, the tuple of its parsed parts, which ``str(url)`` and ``url.path``
rebuild on every call.

``tests/transport/test_httpx_seam.py`` fails loudly when an httpx2 or httpcore2 upgrade moves
either attribute. At run time a missing seam is no error: the backend is simply not installed,
and the transport times connect and TLS from httpcore2's public ``trace`` extension instead (no
DNS phase), rather than reporting wrong timings.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

__all__ = [
    "BACKEND_ATTRIBUTE",
    "HEADER_LIST_ATTRIBUTE",
    "POOL_ATTRIBUTE",
    "URI_ATTRIBUTE",
    "header_items",
    "header_layout",
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
    """An ``httpx2.Headers``' own ``(raw name, lower-case name, value)`` items (not a copy), or
    None without the seam. Read them only, with one exception: the owner of a fresh copy (the
    client's request template, for ``Content-Length``) may replace an item by one of the same
    name and shape, ASCII value, which keeps every name where it was (``header_layout``)."""
    items = getattr(headers, HEADER_LIST_ATTRIBUTE, None)
    return items if type(items) is list else None


#: Where each lower-case name sits in a head with these names, by name (a client sends the same
#: names call after call, so a head's layout is worked out once); None for a head whose names
#: repeat (their values are to be joined).
_LAYOUTS: dict[tuple[bytes, ...], dict[bytes, int] | None] = {}
_MAX_LAYOUTS = 256
_UNKNOWN: Any = object()
_LOWER_NAME = itemgetter(1)

#: An ``httpx2.Headers``' own items and the index of each lower-case name among them.
Layout = tuple[list[tuple[bytes, bytes, bytes]], dict[bytes, int]]


def header_layout(headers: object) -> Layout | None:
    """``headers``' own ``(raw name, lower-case name, value)`` items (read them only) and the
    index of each lower-case name among them: a value is ``items[layout[name]][2]``. None
    when a name repeats (its values are to be joined) or without the seam.

    The cheap way to read a few of a request's headers: the layout of a head with the same
    names is remembered (up to a bound), so a call builds one tuple of names and makes one
    lookup, not a dict of all its headers."""
    items = getattr(headers, HEADER_LIST_ATTRIBUTE, None)
    if type(items) is not list:
        return None
    try:
        names = tuple(map(_LOWER_NAME, items))
        layout = _LAYOUTS.get(names, _UNKNOWN)
    except (TypeError, LookupError):  # not the (raw, lower, value) items of httpx2
        return None
    if layout is _UNKNOWN:
        layout = _layout_of(items, names)
        if layout is _UNKNOWN:
            return None
    return None if layout is None else (items, layout)


def _layout_of(items: list[Any], names: tuple[Any, ...]) -> Any:
    """The layout of a head with these items (remembered, up to a bound): None when a name
    repeats; ``_UNKNOWN`` (not remembered) for items that are not httpx2's."""
    for item in items:
        if type(item) is not tuple or len(item) != 3 or not all(type(b) is bytes for b in item):
            return _UNKNOWN
    layout: dict[bytes, int] | None = {name: index for index, name in enumerate(names)}
    if len(layout) != len(names):  # type: ignore[arg-type]
        layout = None
    if len(_LAYOUTS) < _MAX_LAYOUTS:
        _LAYOUTS[names] = layout
    return layout


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
