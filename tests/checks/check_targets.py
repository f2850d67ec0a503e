"""Check contexts against a test server: the target, a short deadline, a raw server's context."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

from chatcontract.checks.context import CheckContext, SuiteOptions
from chatcontract.contract import Contract, load_preset
from chatcontract.target import Target
from raw_servers import Handler, RawServer, raw_server

SECRET = "sk-test-secret-000"


def target_of(contract: Contract, model: str = "gpt-4.1-nano") -> Target:
    """A real (not simulated) target of ``contract``, its key ``SECRET``."""
    return Target(
        contract=contract,
        contract_path=None,
        secret=SECRET,
        secret_source="test",
        model=model,
        simulated=False,
    )


def with_deadline_ms(contract: Contract, ms: int) -> Contract:
    """``contract`` with every phase and the call's deadline at ``ms``."""
    timeouts = replace(
        contract.policy.timeouts, connect_ms=ms, first_byte_ms=ms, first_token_ms=ms, total_ms=ms
    )
    policy = replace(contract.policy, timeouts=timeouts, fallback_reserve_ms=min(100, ms))
    return replace(contract, policy=policy)


@contextlib.contextmanager
def context_against(
    handler: Handler, contract: Contract | None = None
) -> Iterator[tuple[CheckContext, RawServer]]:
    """A one-run check context (one canary run, one latency sample) against a raw server
    running ``handler``, ``contract`` (default: the openai preset) pointed at it; and the
    server."""
    contract = load_preset("openai") if contract is None else contract
    with raw_server(handler) as server:
        contract = replace(contract, endpoint=replace(contract.endpoint, base_url=server.base_url))
        ctx = CheckContext.open(target_of(contract), SuiteOptions(canary_runs=1, latency_samples=1))
        try:
            yield ctx, server
        finally:
            ctx.close()
