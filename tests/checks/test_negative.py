"""Negative checks name what the server answered, in its own terms."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

from chatcontract.checks.context import CheckContext, SuiteOptions
from chatcontract.checks.negative import check_missing_auth
from chatcontract.contract import load_preset
from chatcontract.target import Target
from raw_servers import RawServer, raw_server, read_request


async def _401_head_then_silence(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
) -> None:
    if await read_request(reader, server) is None:
        return
    writer.write(
        b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"
        b"content-length: 100\r\n\r\n"
    )
    await writer.drain()
    with contextlib.suppress(TimeoutError):  # the body never comes; the client gives up
        await asyncio.wait_for(reader.read(1), timeout=10)


def test_a_401_whose_body_never_comes_is_not_called_an_answer():
    contract = load_preset("openai")
    timeouts = replace(
        contract.policy.timeouts,
        connect_ms=300,
        first_byte_ms=300,
        first_token_ms=300,
        total_ms=300,
    )
    contract = replace(
        contract, policy=replace(contract.policy, timeouts=timeouts, fallback_reserve_ms=100)
    )
    with raw_server(_401_head_then_silence) as server:
        contract = replace(contract, endpoint=replace(contract.endpoint, base_url=server.base_url))
        target = Target(
            contract=contract,
            contract_path=None,
            secret="sk-test-secret-000",
            secret_source="test",
            model="gpt-4.1-nano",
            simulated=False,
        )
        ctx = CheckContext.open(target, SuiteOptions(canary_runs=1, latency_samples=1))
        try:
            outcome = check_missing_auth(ctx)
        finally:
            ctx.close()
    # The caller gets a timeout, not the 401 (so the verdict stands), and the report says why
    # instead of "got HTTP 401, not an auth error".
    assert outcome.status == "fail"
    assert outcome.observed.startswith(
        "a request without the key got HTTP 401 but not its body, not an auth error "
        "(classified transport/timeout/deadline"
    ), outcome.observed
