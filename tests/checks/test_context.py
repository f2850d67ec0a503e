"""What every check sends through: how much of an answer the suite keeps in memory."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
from check_targets import context_against

from chatcontract.checks.context import read_kept
from chatcontract.transport.observer import MAX_BODY_BYTES
from raw_servers import endless_body

PIECE = 1 << 20


def _pieces(count: int, read: list[int]) -> Iterator[bytes]:
    for _ in range(count):
        read.append(PIECE)
        yield b"x" * PIECE


def test_a_body_is_read_no_further_than_the_cap():
    read: list[int] = []
    response = httpx2.Response(
        200, headers={"content-type": "application/json"}, content=_pieces(64, read)
    )
    kept = read_kept(response)
    assert MAX_BODY_BYTES < len(kept) <= MAX_BODY_BYTES + PIECE
    assert sum(read) < 64 * PIECE  # the rest was never read
    assert response.is_closed


def test_a_stream_is_read_to_its_end_but_kept_only_up_to_the_cap():
    # The observer judges a stream on all of it; the suite keeps its first bytes only.
    read: list[int] = []
    response = httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=_pieces(64, read)
    )
    kept = read_kept(response)
    assert sum(read) == 64 * PIECE
    assert MAX_BODY_BYTES < len(kept) <= MAX_BODY_BYTES + PIECE
    assert response.is_closed


def test_a_server_sending_without_end_is_judged_for_its_size_not_read_to_the_deadline():
    total = 256 * 1024 * 1024
    with context_against(endless_body(total)) as (ctx, server):
        exchange = ctx.send(ctx.fixture())
        sent = server.state["sent"]
    assert exchange.failure is not None
    assert exchange.failure.code == "body_too_large"
    # Response.read() took all 256 MiB into memory; now the socket buffers hold the rest.
    assert sent < total // 4
