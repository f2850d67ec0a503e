"""Every recovery scenario of the recovery issue, through the gateway, with the official openai
SDK (sync and async, complete and stream): the final text is the exact full answer, or the
client sees the documented error (a 400 for content policy; an in-band SSE error event for a
stream that broke after its first byte and could not be continued). Simulators run at time
scale 0.01 with limits scaled to match."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from gateway_helpers import (
    BACKUP_MODEL,
    FULL,
    PROMPT,
    TIMEOUTS,
    UNHURRIED,
    contract_for,
    env_for,
    eventually,
)

from chatcontract.contract import Timeouts
from chatcontract.simulator.scenarios import OUTAGE_MS

SCALE = 0.01


@dataclass(frozen=True)
class Case:
    """The primary's scenario, the backup's, and what the client ends with.

    ``stream``/``complete``: ``full`` (the exact full answer), ``policy`` (a 400
    invalid_request_error before any byte), ``interrupted`` (text then an in-band
    stream_interrupted_error event, no [DONE])."""

    primary: str
    backup: str = "ok"
    settings: dict[str, Any] = field(default_factory=dict)
    stream: str = "full"
    complete: str = "full"
    continuation: str = "assistant_prefix"
    windows: tuple[int | None, int | None] = (None, None)
    model: str | None = None  # the model that must be reported (prefix)
    calls: int = 1
    #: The test contract's limits: scaled to the faults that must outlast them; the cases
    #: where text must reach the client before the primary breaks take ``UNHURRIED`` ones (a
    #: first-token limit run out on a loaded box falls back before any text: a full answer).
    timeouts: Timeouts = TIMEOUTS


CASES = [
    pytest.param(Case("rate_limit_retry_after"), id="429-retry-after"),
    pytest.param(Case("rate_limit_once"), id="429-without-retry-after"),
    pytest.param(Case("rate_limit", model=BACKUP_MODEL), id="429-always"),
    pytest.param(Case("server_error_once"), id="500-once"),
    pytest.param(Case("upstream_unavailable", model=BACKUP_MODEL), id="503-always"),
    pytest.param(Case("reset_once"), id="reset-before-headers"),
    pytest.param(Case("no_response", model=BACKUP_MODEL), id="silence"),
    pytest.param(
        Case(
            "late_first_token",
            # 2.5 s at this scale: past first_token_ms (streams) and first_byte_ms (not)
            settings={"delay_ms": 250_000},
            model=BACKUP_MODEL,
        ),
        id="late-first-token",
    ),
    pytest.param(Case("cut_stream", settings={"after_tokens": 5}), id="cut-after-5-tokens"),
    pytest.param(
        Case("stall_mid_stream", settings={"after_tokens": 5, "delay_ms": 100_000}),
        id="stall-after-5-tokens",
    ),
    pytest.param(Case("malformed_chunk", settings={"after_tokens": 5}), id="malformed-event"),
    pytest.param(Case("inband_error_chunk", settings={"after_tokens": 4}), id="in-band-error"),
    pytest.param(Case("no_done"), id="no-done"),
    pytest.param(
        Case("context_length", windows=(8_192, 128_000), model=BACKUP_MODEL),
        id="400-context-length",
    ),
    pytest.param(Case("content_policy", stream="policy", complete="policy"), id="400-policy"),
    pytest.param(
        Case(
            "cut_stream",
            backup="refuses_assistant_prefix",
            settings={"after_tokens": 5},
            stream="interrupted",
            timeouts=UNHURRIED,
        ),
        id="fallback-refuses-prefix",
    ),
    pytest.param(
        Case(
            "cut_stream",
            settings={"after_tokens": 5},
            continuation="none",
            stream="interrupted",
            timeouts=UNHURRIED,
        ),
        id="no-continuation-declared",
    ),
    pytest.param(Case("flapping_outage", calls=8), id="flapping-outage"),
]

MODES = ["sync-complete", "async-complete", "sync-stream", "async-stream"]


def _complete_sync(client: openai.OpenAI, model: str) -> tuple[str, str, list[str]]:
    completion = client.chat.completions.create(model=model, messages=PROMPT)
    return completion.choices[0].message.content or "", completion.model, [completion.id]


async def _complete_async(client: openai.AsyncOpenAI, model: str) -> tuple[str, str, list[str]]:
    completion = await client.chat.completions.create(model=model, messages=PROMPT)
    return completion.choices[0].message.content or "", completion.model, [completion.id]


class PartialStreamError(Exception):
    """An SDK error raised mid-stream, with the text read before it."""

    def __init__(self, error: openai.APIError, text: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.text = text


def _run_sync(base_url: str, model: str, stream: bool) -> tuple[str, str, list[str]]:
    with openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=30) as client:
        if not stream:
            return _complete_sync(client, model)
        text = ""
        try:
            ids, models = [], []
            for chunk in client.chat.completions.create(model=model, messages=PROMPT, stream=True):
                ids.append(chunk.id)
                models.append(chunk.model)
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
        except openai.APIError as error:
            if isinstance(error, openai.APIStatusError):
                raise
            raise PartialStreamError(error, text) from error
        return text, models[-1], ids


async def _run_async(base_url: str, model: str, stream: bool) -> tuple[str, str, list[str]]:
    async with openai.AsyncOpenAI(
        base_url=base_url, api_key="k", max_retries=0, timeout=30
    ) as client:
        if not stream:
            return await _complete_async(client, model)
        text = ""
        try:
            ids, models = [], []
            async for chunk in await client.chat.completions.create(
                model=model, messages=PROMPT, stream=True
            ):
                ids.append(chunk.id)
                models.append(chunk.model)
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
        except openai.APIError as error:
            if isinstance(error, openai.APIStatusError):
                raise
            raise PartialStreamError(error, text) from error
        return text, models[-1], ids


def _call(mode: str, base_url: str, model: str) -> tuple[str, str, list[str]]:
    stream = mode.endswith("stream")
    if mode.startswith("sync"):
        return _run_sync(base_url, model, stream)
    return asyncio.run(_run_async(base_url, model, stream))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_every_recovery_scenario_ends_in_the_full_answer_or_the_documented_error(
    case: Case, mode: str, sims, gateway
):
    primary = sims(case.primary, time_scale=SCALE, **case.settings)
    backup = sims(case.backup, time_scale=SCALE)
    primary.reset()  # fault counts and windows start afresh
    backup.reset()
    contract = contract_for(
        primary.base_url,
        backup_url=backup.base_url,
        continuation=case.continuation,
        timeouts=case.timeouts,
        windows=case.windows,
    )
    server = gateway(contract, env_for(primary.api_key, backup.api_key))
    model = server.app.state.routes[0].model
    expect = case.stream if mode.endswith("stream") else case.complete
    gap_s = OUTAGE_MS / 1000.0 * SCALE / case.calls
    for index in range(case.calls):
        if index:
            time.sleep(gap_s)
        if expect == "policy":
            with pytest.raises(openai.BadRequestError) as caught:
                _call(mode, server.base_url, model)
            assert caught.value.status_code == 400
            assert caught.value.type == "invalid_request_error"
            assert caught.value.code == "content_policy_violation"
            continue
        if expect == "interrupted":
            with pytest.raises(PartialStreamError) as broken:
                _call(mode, server.base_url, model)
            body = broken.value.error.body
            assert isinstance(body, dict) and body["type"] == "stream_interrupted_error"
            assert body["code"] == "stream_dropped"  # what broke it, never the refusal
            assert broken.value.text and FULL.startswith(broken.value.text)
            assert broken.value.text != FULL
            continue
        text, answered_by, ids = _call(mode, server.base_url, model)
        assert text == FULL
        assert len(set(ids)) == 1  # one response, continued or not
        if case.model is not None:
            assert answered_by.startswith(case.model)
    assert eventually(lambda: server.app.state.in_flight == 0)
