"""How checks describe an answer whose body the deadline cut after its head came."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from check_targets import context_against, with_deadline_ms

from chatcontract.checks.context import CheckContext
from chatcontract.checks.measure import check_latency_by_prompt_size
from chatcontract.checks.outcome import describe
from chatcontract.contract import load_preset
from raw_servers import trickling_body


def _against_a_trickling_body(use: Callable[[CheckContext], Any]) -> Any:
    """``use(ctx)`` against a server whose head comes at once and whose body comes a byte a
    second: the contract's 300 ms deadline cuts every answer in its body."""
    contract = with_deadline_ms(load_preset("openai"), 300)
    with context_against(trickling_body(1.0), contract) as (ctx, _):
        return use(ctx)


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
