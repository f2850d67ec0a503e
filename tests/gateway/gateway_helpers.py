"""Shared builders for the gateway tests: contracts aimed at simulators, SDK clients, raw HTTP."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import anyio

from chatcontract.contract import Contract, FallbackRoute, RetryPolicy, Timeouts, load_preset
from chatcontract.simulator.answers import answer_for

PROMPT = [{"role": "user", "content": "Tell me how streams end"}]
FULL = answer_for(PROMPT).content
PRIMARY_ENV = "COMETAPI_KEY"
FALLBACK_ENV = "CHATCONTRACT_TEST_GATEWAY_FALLBACK_KEY"
BACKUP_MODEL = "gpt-4o-mini"

FAST_RETRY = RetryPolicy(
    max_attempts=2, backoff_initial_ms=5, backoff_max_ms=10, jitter=0.0, retry_after_cap_ms=10_000
)
#: Limits sized for simulators at time scale 0.01, with room for a loaded machine: a healthy
#: stream never comes near them, the scripted faults (held 6 s, late 2.5 s, stalled 1 s) pass
#: them. (A first-token limit of 500 ms ran out before a healthy first token in a full CI run.)
TIMEOUTS = Timeouts(
    connect_ms=1_000, first_byte_ms=1_000, first_token_ms=1_000, idle_ms=400, total_ms=10_000
)

#: Limits no healthy answer misses on a loaded machine, for the tests that judge what the client
#: gets, not when: under a full CI run, a 500 ms first-token limit ran out before a healthy
#: upstream's first token (the gateway then rightly fell back before any text).
UNHURRIED = Timeouts(
    connect_ms=5_000, first_byte_ms=5_000, first_token_ms=5_000, idle_ms=5_000, total_ms=20_000
)


def contract_for(
    primary_url: str,
    *,
    backup_url: str | None = None,
    continuation: str = "assistant_prefix",
    timeouts: Timeouts = TIMEOUTS,
    windows: tuple[int | None, int | None] = (None, None),
    **changes: Any,
) -> Contract:
    """The cometapi preset aimed at ``primary_url``, with a ``backup`` route (another model)
    on ``backup_url`` when given."""
    base = load_preset("cometapi")
    fallbacks: tuple[FallbackRoute, ...] = ()
    if backup_url is not None:
        fallbacks = (
            FallbackRoute(
                name="backup",
                model=BACKUP_MODEL,
                base_url=backup_url,
                auth_env=(FALLBACK_ENV,),
                continuation=continuation,  # type: ignore[arg-type]
                context_window=windows[1],
            ),
        )
    policy = replace(
        base.policy,
        retry=FAST_RETRY,
        timeouts=timeouts,
        fallback_reserve_ms=500,
        kill_switch_env="CHATCONTRACT_KILL_SWITCH",
        breaker=replace(base.policy.breaker, cooldown_ms=100),
    )
    return replace(
        base,
        endpoint=replace(base.endpoint, base_url=primary_url),
        fallbacks=fallbacks,
        policy=policy,
        context_window=windows[0],
        **changes,
    )


def env_for(primary_key: str, backup_key: str | None = None, **extra: str) -> dict[str, str]:
    env = {PRIMARY_ENV: primary_key, **extra}
    if backup_key is not None:
        env[FALLBACK_ENV] = backup_key
    return env


def raw_request(
    root_url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with the standard library (no SDK in between): status, headers, body."""
    host_port = root_url.removeprefix("http://")
    connection = http.client.HTTPConnection(host_port, timeout=20)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        found = {name.lower(): value for name, value in response.getheaders()}
        return response.status, found, data
    finally:
        connection.close()


def error_of(body: bytes) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped error body (checks the shape)."""
    doc = json.loads(body)
    assert set(doc) == {"error"}
    error = doc["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str)
    return dict(error)


def eventually(condition: Callable[[], bool], *, within_s: float = 10.0) -> bool:
    """Whether ``condition()`` becomes true within ``within_s`` (polled: the server thread
    finishes its bookkeeping just after the client has read the response)."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


async def request_read(scope: Any, receive: Any, send: Any) -> bool:
    """What a test upstream (an ASGI app) does first: serve its lifespan (False: that was
    all), or read the request's body to its end (True: answer it now)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return False
    while (await receive()).get("more_body"):
        pass
    return True


class ScriptedStream:
    """An ASGI upstream streaming the given pieces as one SSE body, one body message each,
    ``gap_s`` apart (each its own read at the gateway, as a rule)."""

    def __init__(self, pieces: list[bytes], *, gap_s: float = 0.01) -> None:
        self.pieces = pieces
        self.gap_s = gap_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not await request_read(scope, receive, send):
            return
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in self.pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await anyio.sleep(self.gap_s)
        await self.more(send)
        await send({"type": "http.response.body", "body": b""})

    async def more(self, send: Any) -> None:
        """What follows the pieces before the body ends (nothing here; subclasses add)."""
