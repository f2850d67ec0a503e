"""Per-attempt time limits that httpx2's own timeouts cannot express.

httpx2's read timeout bounds one silent gap, fixed when the request starts. Two limits need
more: the attempt's share of the call deadline (a trickle of bytes would otherwise outlive
it), and the first-token limit of a stream (``: PING`` keep-alives reset the read timeout but
carry no token). ``AttemptWatch`` holds both (sans-IO); the guard transports sit *under* the
instrumented transport and raise a read timeout from the body when a limit passes, so the
Exchange records the attempt as stalled / timed out, exactly as if the socket had gone quiet.

A limit is checked as each piece of the body arrives, and it also bounds the wait for the next
piece (``transport.limit_reads``): before the first token the first-token limit, once content
started the idle limit (keep-alive comments arrive but do not reset it), in place of the read
timeout. So a socket that goes fully silent mid-answer is cut at ``idle_ms`` and named for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal, NoReturn

import httpx2

from chatcontract.failures import DeadlineExceeded
from chatcontract.transport import limit_reads

__all__ = [
    "WATCH_EXTENSION",
    "AsyncGuardTransport",
    "AttemptDeadlineError",
    "AttemptWatch",
    "FirstTokenTimeoutError",
    "GuardTransport",
    "IdleTimeoutError",
]

#: The request extension carrying an attempt's ``AttemptWatch``.
WATCH_EXTENSION = "chatcontract.watch"


class FirstTokenTimeoutError(httpx2.ReadTimeout):
    """The stream sent no token within ``policy.timeouts.first_token_ms`` (keep-alives aside)."""


class IdleTimeoutError(httpx2.ReadTimeout):
    """Content had started, then no data event came within ``policy.timeouts.idle_ms``."""


class AttemptDeadlineError(DeadlineExceeded, httpx2.ReadTimeout):
    """The attempt's share of the call deadline ran out while the body was still arriving."""


class AttemptWatch:
    """The limits of one attempt on an injected monotonic clock.

    ``token_seen`` is set by the client once its stream reader produced a delta, and
    ``data_seen()`` called for each data event after that (what resets the idle limit: SSE
    comments and keep-alives do not). ``fired`` names the limit that ended the attempt.

    ``token_budget_s`` (a stream's): the attempt's share of the call deadline until its first
    token, shorter than ``budget_s`` (the fallback reserve is kept until then, released once
    text flows: ``CallPlan`` decides).
    """

    __slots__ = (
        "_clock",
        "ends_at",
        "fired",
        "first_token_by",
        "idle_s",
        "last_data_at",
        "token_ends_at",
        "token_seen",
    )

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        budget_s: float,
        first_token_s: float | None,
        idle_s: float | None = None,
        token_budget_s: float | None = None,
    ) -> None:
        now = clock()
        self._clock = clock
        self.ends_at = now + budget_s
        self.token_ends_at = None if token_budget_s is None else now + token_budget_s
        self.first_token_by = None if first_token_s is None else now + first_token_s
        self.idle_s = idle_s
        self.last_data_at = now
        self.token_seen = False
        self.fired: Literal["deadline", "first_token", "idle"] | None = None

    @property
    def limits_reads(self) -> bool:
        """Whether a first-token, idle or first-token deadline limit may bound the wait for
        the next piece (a stream); without any, ``read_limit`` is always None."""
        return (
            self.first_token_by is not None
            or self.idle_s is not None
            or self.token_ends_at is not None
        )

    def reserve_passed(self) -> bool:
        """No token came and the attempt's share before its first token ran out (the fallback
        reserve it kept is what is left)."""
        ends = self.token_ends_at
        return ends is not None and not self.token_seen and self._clock() >= ends

    def data_seen(self) -> None:
        """A data event (not a comment) arrived: the idle limit starts again."""
        self.last_data_at = self._clock()

    def read_limit(self) -> tuple[Literal["first_token", "idle", "deadline"], float] | None:
        """The limit the wait for the next piece of the body is bound by, and the seconds left
        on it: the first-token limit before content, the idle limit after; ``deadline`` for
        the attempt's share before its first token when that comes first (``token_budget_s``:
        the transport's deadline is the whole budget); None when none applies (a non-streamed
        body) or the attempt's deadline comes first."""
        now = self._clock()
        kind: Literal["first_token", "idle", "deadline"]
        ends = self.ends_at
        if not self.token_seen:
            token_ends = self.token_ends_at
            if token_ends is not None:
                ends = token_ends
            if self.first_token_by is None:
                return None if token_ends is None else ("deadline", max(ends - now, 0.0))
            kind, left = "first_token", self.first_token_by - now
            if token_ends is not None and left > ends - now:
                kind, left = "deadline", ends - now
        elif self.idle_s is None:
            return None
        else:
            kind, left = "idle", self.last_data_at + self.idle_s - now
        if left > ends - now:
            return None
        return kind, max(left, 0.0)

    def timed_out(
        self, limit: Literal["first_token", "idle", "deadline"], request: httpx2.Request
    ) -> httpx2.ReadTimeout:
        """The wait bound by ``limit`` (``read_limit``) timed out: the read timeout to raise."""
        self.fired = limit
        if limit == "deadline":
            return AttemptDeadlineError(
                "the attempt's share of the call deadline ran out before its first token",
                request=request,
            )
        if limit == "first_token":
            return FirstTokenTimeoutError(
                "no token within the first-token limit (the socket went silent)", request=request
            )
        return IdleTimeoutError(
            "no stream data within the idle limit (the socket went silent)", request=request
        )

    def check(self) -> Literal["ok", "deadline", "first_token", "idle"]:
        """Which limit has passed, if any."""
        now = self._clock()
        if now >= self.ends_at:
            return "deadline"
        if not self.token_seen:
            first_by, token_ends = self.first_token_by, self.token_ends_at
            # Both passed: the one that came first.
            if (
                first_by is not None
                and now >= first_by
                and (token_ends is None or token_ends >= first_by)
            ):
                return "first_token"
            if token_ends is not None and now >= token_ends:
                return "deadline"
        elif self.idle_s is not None and now - self.last_data_at >= self.idle_s:
            return "idle"
        return "ok"

    def raise_if_passed(self, request: httpx2.Request) -> None:
        """Raise the read timeout matching the limit that passed."""
        verdict = self.check()
        if verdict != "ok":
            self.passed(verdict, request)

    def passed(
        self, verdict: Literal["deadline", "first_token", "idle"], request: httpx2.Request
    ) -> NoReturn:
        """Raise the read timeout for ``verdict`` (a limit :meth:`check` found passed)."""
        self.fired = verdict
        if verdict == "deadline":
            raise AttemptDeadlineError(
                "the attempt's share of the call deadline ran out", request=request
            )
        if verdict == "first_token":
            raise FirstTokenTimeoutError(
                "no token within the first-token limit (keep-alives only)", request=request
            )
        raise IdleTimeoutError(
            "no stream data within the idle limit (keep-alives only)", request=request
        )


def _watch_of(request: httpx2.Request) -> AttemptWatch | None:
    watch = request.extensions.get(WATCH_EXTENSION)
    return watch if isinstance(watch, AttemptWatch) else None


class _GuardedStream(httpx2.SyncByteStream):
    def __init__(self, inner: Any, watch: AttemptWatch, request: httpx2.Request) -> None:
        self._inner = inner
        self._watch = watch
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        watch, request = self._watch, self._request
        if not watch.limits_reads:  # only the deadline: checked as each piece arrives
            for chunk in self._inner:
                watch.raise_if_passed(request)
                yield chunk
            return
        chunks = iter(self._inner)
        while True:
            limit = watch.read_limit()
            limit_reads(None if limit is None else limit[1])
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except httpx2.ReadTimeout as exc:
                if limit is None:
                    raise
                raise watch.timed_out(limit[0], request) from exc
            finally:
                limit_reads(None)
            watch.raise_if_passed(request)
            yield chunk

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class _AsyncGuardedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, watch: AttemptWatch, request: httpx2.Request) -> None:
        self._inner = inner
        self._watch = watch
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        watch, request = self._watch, self._request
        if not watch.limits_reads:  # only the deadline: checked as each piece arrives
            async for chunk in self._inner:
                watch.raise_if_passed(request)
                yield chunk
            return
        chunks = aiter(self._inner)
        try:
            while True:
                limit = watch.read_limit()
                limit_reads(None if limit is None else limit[1])
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except httpx2.ReadTimeout as exc:
                    if limit is None:
                        raise
                    raise watch.timed_out(limit[0], request) from exc
                verdict = watch.check()
                if verdict != "ok":
                    watch.passed(verdict, request)
                yield chunk
        finally:
            # Once, not after each read: the next read sets its own limit first, and nothing
            # reads this body in between.
            limit_reads(None)

    async def aclose(self) -> None:
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()


class GuardTransport(httpx2.BaseTransport):
    """Wraps the transport doing the I/O; closes it only if ``owns_inner``."""

    def __init__(self, inner: httpx2.BaseTransport, *, owns_inner: bool) -> None:
        self._inner = inner
        self._owns = owns_inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self._inner.handle_request(request)
        watch = _watch_of(request)
        if watch is not None:
            response.stream = _GuardedStream(response.stream, watch, request)
        return response

    def close(self) -> None:
        if self._owns:
            self._inner.close()


class AsyncGuardTransport(httpx2.AsyncBaseTransport):
    """The async twin of ``GuardTransport``."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, owns_inner: bool) -> None:
        self._inner = inner
        self._owns = owns_inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        watch = _watch_of(request)
        if watch is not None:
            stream = response.stream
            # The aiohttp wire's body checks the watch itself (no layer per read), and bounds
            # each wait by the read limit directly (``limit_reads`` is its timed backend's).
            guard_reads = getattr(stream, "guard_reads", None)
            if guard_reads is not None:
                guard_reads(watch)
            else:
                response.stream = _AsyncGuardedStream(stream, watch, request)
        return response

    async def aclose(self) -> None:
        if self._owns:
            await self._inner.aclose()
