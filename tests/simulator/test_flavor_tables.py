"""The flavor tables: request ids, key masking, catalogues, and completeness of every table."""

from __future__ import annotations

import re

import orjson
import pytest
from sim_helpers import REQUEST_ID

from chatcontract.simulator import COMETAPI, FLAVORS, OPENAI
from chatcontract.simulator.catalogue import COMETAPI_MODELS, OPENAI_MODELS, Catalogue, ModelInfo
from chatcontract.simulator.flavors import (
    ErrorSpec,
    IdSource,
    Situation,
    mask_key,
    new_api_request_id,
    openai_request_id,
)


def test_new_api_request_ids_match_the_gateway_format():
    ids = IdSource(clock=lambda: 1_774_412_483_000_012_345)
    request_id = new_api_request_id(ids)
    assert re.fullmatch(REQUEST_ID, request_id)
    # yyyyMMddHHmmss (UTC) then nanoseconds % 1e9 without zero padding, then 8 alphanumerics.
    assert request_id.startswith("2026032504212312345")
    assert len(request_id) == 14 + 5 + 8


def test_request_ids_differ_per_request_and_repeat_across_runs():
    first, second = IdSource(clock=lambda: 0), IdSource(clock=lambda: 0)
    run_one = [new_api_request_id(first) for _ in range(3)]
    run_two = [new_api_request_id(second) for _ in range(3)]
    assert len(set(run_one)) == 3
    assert run_one == run_two


def test_openai_request_ids_are_req_and_hex():
    assert re.fullmatch(r"req_[0-9a-f]{32}", openai_request_id(IdSource()))


def test_completion_ids_are_chatcmpl_and_29_alphanumerics():
    assert re.fullmatch(r"chatcmpl-[0-9A-Za-z]{29}", IdSource().completion_id())


@pytest.mark.parametrize(
    ("key", "masked"),
    [("sk-abcdefghijklmnopqrstuvwxyz", "sk-ab***yz"), ("short-key", "***"), ("", "***")],
    ids=["long", "short", "empty"],
)
def test_mask_key_never_shows_the_whole_key(key, masked):
    assert mask_key(key) == masked


@pytest.mark.parametrize("flavor", list(FLAVORS.values()), ids=list(FLAVORS))
def test_every_situation_has_an_error_spec(flavor):
    assert set(flavor.errors) == set(Situation)


def test_cometapi_gateway_errors_use_the_gin_key_order_and_request_id_suffix():
    spec = COMETAPI.errors[Situation.MISSING_MODEL]
    body = orjson.loads(spec.body({}, "20260101000000123abcdefgh"))
    assert list(body["error"]) == ["code", "message", "type"]
    assert (
        body["error"]["message"] == "model name is required (request id: 20260101000000123abcdefgh)"
    )


def test_missing_template_values_render_empty_instead_of_raising():
    spec = ErrorSpec(status=400, fields=(("message", "model {model} is odd"),))
    assert orjson.loads(spec.body({}, "id"))["error"]["message"] == "model  is odd"


def test_error_spec_refuses_both_fields_and_a_raw_body():
    with pytest.raises(ValueError, match="not both"):
        ErrorSpec(status=500, fields=(("message", "x"),), raw=b"<html>")


@pytest.mark.parametrize(
    ("alias", "snapshot"),
    [
        ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("gpt-4o", "gpt-4o-2024-08-06"),
        ("gpt-5-mini", "gpt-5-mini-2025-08-07"),
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
        ("deepseek-chat", "deepseek-chat"),
    ],
    ids=["4.1-nano", "4o-mini", "4o", "5-mini", "snapshot-echoed", "no-snapshot-echoed"],
)
def test_aliases_answer_with_their_dated_snapshot(alias, snapshot):
    assert COMETAPI_MODELS.response_model(alias) == snapshot


def test_openai_catalogue_has_no_other_vendors():
    assert "gpt-4o-mini" in OPENAI_MODELS
    assert "claude-haiku-4-5-20251001" in COMETAPI_MODELS
    assert "claude-haiku-4-5-20251001" not in OPENAI_MODELS
    assert OPENAI.catalogue is OPENAI_MODELS


def test_models_body_is_an_openai_list():
    body = orjson.loads(Catalogue([ModelInfo(id="m1", owned_by="me", created=5)]).models_body)
    assert body == {
        "object": "list",
        "data": [{"id": "m1", "object": "model", "created": 5, "owned_by": "me"}],
    }


def test_fingerprints_are_fp_and_ten_hex_digits():
    assert re.fullmatch(r"fp_[0-9a-f]{10}", ModelInfo(id="m").fingerprint)
