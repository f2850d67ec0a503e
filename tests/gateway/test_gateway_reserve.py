"""Through the gateway, as through ``ChatClient``: a healthy stream that no later route could
take over once text flows (the backup declares no continuation, and a gateway client takes no
restart) is not cut at ``deadline - fallback_reserve_ms``; before its first token the reserve
is still kept for the backup."""

from __future__ import annotations

from dataclasses import replace

import openai
import pytest
from gateway_helpers import BACKUP_MODEL, FULL, PROMPT, contract_for, env_for, eventually

from chatcontract.contract import Timeouts

#: A 2 s call keeping 1 s for its fallback; silence limits at the deadline.
TIMEOUTS = Timeouts(
    connect_ms=1_000, first_byte_ms=2_000, first_token_ms=2_000, idle_ms=2_000, total_ms=2_000
)


@pytest.mark.parametrize(
    ("scenario", "settings", "answered_by"),
    [
        # 1.5 s of tokens: past the primary's share with the reserve kept (1 s).
        pytest.param("slow", {"delay_ms": 1_500}, None, id="healthy-slow-stream"),
        pytest.param("late_first_token", {"delay_ms": 30_000}, BACKUP_MODEL, id="no-token"),
    ],
)
def test_the_gateway_keeps_the_reserve_only_until_text_flows(
    sims, gateway, scenario, settings, answered_by
):
    primary, backup = sims(scenario, **settings), sims()
    contract = contract_for(
        primary.base_url, backup_url=backup.base_url, continuation="none", timeouts=TIMEOUTS
    )
    contract = replace(contract, policy=replace(contract.policy, fallback_reserve_ms=1_000))
    server = gateway(contract, env_for(primary.api_key, backup.api_key))
    model = server.app.state.routes[0].model
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=30) as client:
        text, models = "", []
        for chunk in client.chat.completions.create(model=model, messages=PROMPT, stream=True):
            models.append(chunk.model)
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert text == FULL
    assert models[-1].startswith(answered_by or model)
    assert eventually(lambda: server.app.state.in_flight == 0)
