"""Fetch the provider's documentation (``reference_url``), bounded and without credentials.

One GET with httpx2: http(s) only, a per-phase timeout and an overall deadline, the body
streamed and cut at a size cap, at most ``max_redirects`` redirects followed by hand (each hop
checked), no ``Authorization`` header, no cookie ever sent (a fresh request per hop, never the
client's cookie jar), and a URL carrying ``user:password@`` refused before any connection.

The result is a value: :class:`FetchedDocument` or :class:`DocumentUnreachable` saying why,
never an exception (``validate`` must not fail because the documentation is down).
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore2
import httpx2

from chatcontract._version import __version__
from chatcontract.transport._httpx_seam import set_network_backend
from chatcontract.transport._timing import CURRENT_CLOCK, PhaseClock, _TimedStream

__all__ = [
    "DEFAULT_LIMITS",
    "DocumentUnreachable",
    "FetchLimits",
    "FetchedDocument",
    "fetch_document",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchLimits:
    """The bounds of one documentation fetch."""

    timeout_s: float = 10.0
    deadline_s: float = 30.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5


DEFAULT_LIMITS = FetchLimits()


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedDocument:
    """The documentation as served: final URL, content type and body bytes."""

    url: str
    final_url: str
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentUnreachable:
    """The documentation could not be fetched; ``reason`` says why in one line."""

    url: str
    reason: str


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "application/json, application/yaml, text/yaml, text/html;q=0.9, */*;q=0.5"


def _refusal(url: str) -> str | None:
    """Why ``url`` is not fetched, or None when it may be."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return f"not an http(s) URL (scheme {parts.scheme or 'none'!r})"
    if not parts.hostname:
        return "the URL has no host"
    if "@" in parts.netloc:
        return "the URL carries credentials (user:password@); no credential is ever sent"
    return None


#: C0 and C1 control characters: a Location header is read as Latin-1, so a server can put a
#: terminal escape (``\x9b``, CSI) in a URL this module prints.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _shown(url: str) -> str:
    """``url`` safe to print: credentials replaced, control characters as ``?``."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = "***@" + host.rpartition("@")[2]
    return _CONTROLS.sub("?", f"{scheme}{sep}{host}{slash}{path}"[:300])


class _DeadlineBackend(httpcore2.SyncBackend):
    """httpcore2's own backend (every address of the name tried in turn), with the connect,
    the TLS handshake and every read and write cut to the current clock's deadline."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        clock = CURRENT_CLOCK.get()
        if clock is not None:
            timeout = clock.remaining(timeout, httpcore2.ConnectTimeout)
        stream = super().connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _TimedStream(stream, clock)


def fetch_document(
    url: str,
    *,
    limits: FetchLimits = DEFAULT_LIMITS,
    transport: httpx2.BaseTransport | None = None,
) -> FetchedDocument | DocumentUnreachable:
    """GET ``url`` within ``limits``; never raises for a network or HTTP problem."""
    refused = _refusal(url)
    if refused:
        return DocumentUnreachable(url=_shown(url), reason=refused)
    started = time.monotonic()
    headers = {
        "Accept": _ACCEPT,
        "User-Agent": f"chatcontract/{__version__} (documentation review)",
    }
    current = url
    if transport is None:
        # The timed backend cuts every connect, write and read to the overall deadline: a
        # head dripped one byte per read timeout, or redirect after redirect, cannot outlive it.
        transport = httpx2.HTTPTransport()
        set_network_backend(transport, _DeadlineBackend())
    clock = PhaseClock()
    clock.deadline = started + limits.deadline_s
    token = CURRENT_CLOCK.set(clock)
    try:
        with httpx2.Client(
            timeout=httpx2.Timeout(limits.timeout_s),
            follow_redirects=False,
            transport=transport,
        ) as client:
            for _hop in range(limits.max_redirects + 1):
                request = httpx2.Request("GET", current, headers=headers)  # no cookie jar
                response = client.send(request, stream=True)
                try:
                    if response.status_code in _REDIRECTS:
                        location = response.headers.get("location", "")
                        if not location:
                            return DocumentUnreachable(
                                url=_shown(url),
                                reason=f"HTTP {response.status_code} without a Location",
                            )
                        current = urllib.parse.urljoin(current, location)
                        refused = _refusal(current)
                        if refused:
                            return DocumentUnreachable(
                                url=_shown(url),
                                reason=f"redirected to {_shown(current)}: {refused}",
                            )
                        continue
                    if not 200 <= response.status_code < 300:
                        return DocumentUnreachable(
                            url=_shown(url),
                            reason=f"HTTP {response.status_code} from {_shown(current)}",
                        )
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > limits.max_bytes:
                            return DocumentUnreachable(
                                url=_shown(url),
                                reason=f"larger than {limits.max_bytes // 1024} KiB; not read",
                            )
                        if time.monotonic() - started > limits.deadline_s:
                            return DocumentUnreachable(
                                url=_shown(url),
                                reason=f"took longer than {limits.deadline_s:g} s; not read",
                            )
                    return FetchedDocument(
                        url=url,
                        final_url=current,
                        content_type=response.headers.get("content-type", ""),
                        body=bytes(body),
                    )
                finally:
                    response.close()
    except httpx2.TimeoutException:
        if time.monotonic() - started >= limits.deadline_s:
            return DocumentUnreachable(
                url=_shown(url), reason=f"took longer than {limits.deadline_s:g} s; not read"
            )
        return DocumentUnreachable(
            url=_shown(url), reason=f"timed out after {limits.timeout_s:g} s"
        )
    except (httpx2.HTTPError, httpx2.InvalidURL, ValueError, OSError) as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return DocumentUnreachable(url=_shown(url), reason=f"{type(exc).__name__}: {detail}")
    finally:
        CURRENT_CLOCK.reset(token)
    return DocumentUnreachable(
        url=_shown(url), reason=f"more than {limits.max_redirects} redirects"
    )
