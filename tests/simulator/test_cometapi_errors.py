"""Every row of research/cometapi.md §5 as the cometapi flavor answers it."""

from __future__ import annotations

import re

import pytest
from sim_helpers import CHAT, REQUEST_ID, chat_body, scenario

pytestmark = pytest.mark.anyio

SUFFIX = re.compile(r"^(?P<text>.*) \(request id: (?P<id>[^)]+)\)$", re.DOTALL)


def split_request_id(response) -> tuple[dict, str]:
    """The error object with the request id suffix removed; checks it matches the header."""
    error = response.json()["error"]
    match = SUFFIX.match(error["message"])
    assert match, error["message"]
    assert re.fullmatch(REQUEST_ID, match.group("id"))
    assert match.group("id") == response.headers["x-oneapi-request-id"]
    return {**error, "message": match.group("text")}, match.group("id")


async def test_missing_model_is_400_with_an_empty_code(sim):
    async with sim() as client:
        response = await client.post(CHAT, json={"messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    error, _ = split_request_id(response)
    assert list(error) == ["code", "message", "type"]
    assert error == {"code": "", "message": "model name is required", "type": "comet_api_error"}


async def test_missing_messages_is_500_invalid_request(sim):
    async with sim() as client:
        response = await client.post(CHAT, json={"model": "gpt-4o-mini"})
    assert response.status_code == 500
    error, _ = split_request_id(response)
    assert list(error) == ["message", "type", "param", "code"]
    assert error == {
        "message": "field messages is required",
        "type": "comet_api_error",
        "param": "",
        "code": "invalid_request",
    }


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"max_tokens": "abc"}, "max_tokens"),
        ({"messages": "hi"}, "messages"),
        ({"temperature": "hot"}, "temperature"),
    ],
    ids=["max_tokens-string", "messages-not-a-list", "temperature-string"],
)
async def test_wrong_field_types_are_500_invalid_request(sim, extra, field):
    async with sim() as client:
        response = await client.post(CHAT, json=chat_body(**extra))
    assert response.status_code == 500
    error, _ = split_request_id(response)
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("json: cannot unmarshal ")
    assert f"GeneralOpenAIRequest.{field} " in error["message"]


async def test_malformed_json_is_400_invalid_request(sim):
    async with sim() as client:
        response = await client.post(
            CHAT, content=b'{"model": "gpt-4o-mini",', headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    error, _ = split_request_id(response)
    assert list(error) == ["code", "message", "type"]
    assert error["message"].startswith("Invalid request")


async def test_unknown_model_is_503_model_not_found(sim):
    async with sim() as client:
        response = await client.post(CHAT, json=chat_body(model="definitely-not-a-real-model"))
    assert response.status_code == 503
    error, _ = split_request_id(response)
    assert list(error) == ["code", "message", "type"]
    assert error == {
        "code": "model_not_found",
        "message": "no available channel for group default and model "
        "definitely-not-a-real-model (distributor)",
        "type": "comet_api_error",
    }


async def test_quota_is_403_insufficient_user_quota(sim):
    async with sim() as client:
        response = await client.post(CHAT, json=chat_body(), headers=scenario("quota_exhausted"))
    assert response.status_code == 403
    error, _ = split_request_id(response)
    assert error["code"] == "insufficient_user_quota"
    assert error["type"] == "comet_api_error"


async def test_rate_limit_is_429_with_an_empty_body_and_no_retry_headers(sim):
    async with sim() as client:
        response = await client.post(CHAT, json=chat_body(), headers=scenario("rate_limit"))
    assert response.status_code == 429
    assert response.content == b""
    assert "content-type" not in response.headers
    assert "retry-after" not in response.headers
    assert re.fullmatch(REQUEST_ID, response.headers["x-oneapi-request-id"])


@pytest.mark.parametrize(
    "path", ["/", "/console/token", "/chat/completions"], ids=["root", "console", "no-v1"]
)
async def test_paths_outside_v1_answer_the_html_console(sim, path):
    async with sim() as client:
        response = await client.post(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text.startswith("<!doctype html>")
    assert re.fullmatch(REQUEST_ID, response.headers["x-oneapi-request-id"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/x"),
        ("GET", "/v1/chat/completions"),
        ("POST", "/v1/models"),
        ("POST", "/v1/chat/completions/"),
    ],
    ids=["unknown-path", "wrong-method", "models-post", "trailing-slash"],
)
async def test_unknown_v1_routes_are_404_invalid_url_without_auth(sim, method, path):
    async with sim(headers={}) as client:
        response = await client.request(method, path)
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": f"Invalid URL ({method} {path})",
            "type": "invalid_request_error",
            "param": "",
            "code": "",
        }
    }
