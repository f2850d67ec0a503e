"""How checks describe an answer whose body the deadline cut after its head came."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from chatcontract.checks.context import CheckContext, SuiteOptions
from chatcontract.checks.measure import check_latency_by_prompt_size
from chatcontract.checks.outcome import describe
from chatcontract.contract import load_preset
from chatcontract.target import Target
from raw_servers import raw_server, trickling_body


def _against_a_trickling_body(use: Callable[[CheckContext], Any]) -> Any:
    """``use(ctx)`` against a server whose head comes at once and whose body comes a byte a
    second: the contract's 300 ms deadline cuts every answer in its body."""
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
    with raw_server(trickling_body(1.0)) as server:
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
            return use(ctx)
        finally:
            ctx.close()


def test_a_body_cut_by_the_deadline_is_described_with_the_status_its_head_carried():
    exchange = _against_a_trickling_body(lambda ctx: ctx.send(ctx.fixture()))
    assert exchange.failure is not None
    assert exchange.failure.code == "deadline"
    assert describe(exchange).startswith("HTTP 200: transport/timeout/deadline: ")


def test_latency_names_the_status_of_a_sample_whose_body_the_deadline_cut():
    outcome = _against_a_trickling_body(check_latency_by_prompt_size)
    assert outcome.status == "warn"
    assert "the short prompt failed: HTTP 200 timeout/deadline" in outcome.observed
    assert "no HTTP answer" not in outcome.observed
