"""An attempt's request: built from a per-route template, the same as ``build_request`` makes.

``RequestTemplate`` lays out a request from what httpx2's ``build_request`` laid out once per
route; these tests fail if an httpx2 upgrade changes that layout, or if the client sends any
request that differs from ``build_request``'s (headers in their order, body bytes, URL,
extensions), with or without caller headers and cookies.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from client_helpers import PONG, contract_for, env_for

from chatcontract._log import library_logger
from chatcontract.client import AsyncChatClient, ChatClient
from chatcontract.client import _request as request_module
from chatcontract.client._request import (
    RequestTemplate,
    _may_set_cookies,
    encode_json,
    send_async,
    send_sync,
)

KEY = "cc-key-000111"
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4.1-nano",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "pong"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}

BODIES = [
    pytest.param({"model": "m", "messages": PONG}, id="plain"),
    pytest.param(
        {"model": "m", "messages": [{"role": "user", "content": 'héllo ☃ \u2028 "q" \\ \n'}]},
        id="non-ascii-and-escapes",
    ),
    pytest.param(
        {"model": "m", "messages": PONG, "temperature": 0.1, "top_p": 1e-07, "seed": 2**70},
        id="floats-and-big-int",
    ),
    pytest.param(
        {"model": "m", "messages": PONG, "tools": [{"type": "function", "function": {}}]},
        id="nested",
    ),
    pytest.param({}, id="empty"),
]
URLS = [
    pytest.param("http://127.0.0.1:8790/v1/chat/completions", id="port"),
    pytest.param("https://api.example.com/v1/chat/completions", id="https"),
    pytest.param("https://api.example.com/openai/v1/chat/completions?api-version=1", id="query"),
]
CLIENTS = [
    pytest.param(lambda: httpx2.Client(follow_redirects=False), id="sync"),
    pytest.param(lambda: httpx2.AsyncClient(follow_redirects=False), id="async"),
]
TIMEOUTS = {"connect": 2.0, "read": 5.0, "write": 9.5, "pool": 9.5}


def _same(built: httpx2.Request, expected: httpx2.Request) -> None:
    assert built.method == expected.method
    assert built.url == expected.url
    assert built.headers.raw == expected.headers.raw
    assert built.content == expected.content
    assert list(built.extensions) == list(expected.extensions)
    assert built.extensions == expected.extensions
    assert type(built.stream) is type(expected.stream)


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("make_client", CLIENTS)
def test_the_template_lays_out_the_request_build_request_makes(
    body: dict[str, Any], url: str, make_client: Any
) -> None:
    client = make_client()
    auth = {"Authorization": f"Bearer {KEY}"}
    extensions = {"chatcontract": {"attempt": 1}, "chatcontract.watch": None}
    expected = client.build_request(
        "POST",
        url,
        json=body,
        headers=auth,
        timeout=httpx2.Timeout(**TIMEOUTS),
        extensions=dict(extensions),
    )
    built = RequestTemplate(client, url, auth).build(
        encode_json(body), {**extensions, "timeout": TIMEOUTS}
    )
    _same(built, expected)


@pytest.mark.parametrize("seam", [True, False], ids=["header-seam", "no-seam"])
def test_the_template_sets_each_bodys_length_with_or_without_the_header_seam(
    seam: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not seam:
        monkeypatch.setattr(request_module, "header_items", lambda headers: None)
    client = httpx2.Client()
    url = "http://127.0.0.1:9/v1/chat/completions"
    auth = {"Authorization": f"Bearer {KEY}"}
    template = RequestTemplate(client, url, auth)
    for body in ({"a": 1}, {"messages": ["x" * 1000]}, {}):
        expected = client.build_request(
            "POST", url, json=body, headers=auth, timeout=httpx2.Timeout(**TIMEOUTS)
        )
        built = template.build(encode_json(body), {"timeout": TIMEOUTS})
        _same(built, expected)
        assert built.headers["content-length"] == str(len(encode_json(body)))
    # Each request has its own headers: the template's (its probe's, "{}") never change.
    assert template._headers["content-length"] == "2"
    assert built.headers is not template._headers


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(math.nan, id="nan"),
        pytest.param(math.inf, id="inf"),
        pytest.param({1: "int key"}, id="int-key"),
        pytest.param(("tuple",), id="tuple"),
    ],
)
def test_encode_json_gives_httpx2s_bytes_or_its_error(value: object) -> None:
    body = {"model": "m", "value": value}
    try:
        expected = httpx2.Request("POST", "http://x/", json=body).content
    except ValueError as exc:
        with pytest.raises(type(exc)):
            encode_json(body)
        return
    assert encode_json(body) == expected
    assert json.loads(expected)["model"] == "m"


class Recorder:
    """Answers every call with ``ANSWER``; keeps the requests; may set a cookie."""

    def __init__(self, cookie: str | None = None) -> None:
        self.requests: list[httpx2.Request] = []
        self.cookie = cookie

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        headers = {"set-cookie": f"{self.cookie}; Path=/"} if self.cookie else {}
        return httpx2.Response(200, json=ANSWER, headers=headers)


def _expected(client: Any, sent: httpx2.Request, body: dict[str, Any], headers: Any) -> Any:
    """What ``build_request`` makes for the attempt the client sent."""
    route = client.routes[0]
    return client._http[route.name].build_request(
        "POST",
        route.url,
        json=body,
        headers={**headers, route.auth_header: route.auth_value},
        timeout=httpx2.Timeout(**sent.extensions["timeout"]),
    )


CALLS = [
    pytest.param({}, {}, id="no-params"),
    pytest.param({"max_tokens": 16, "temperature": 0.5}, {}, id="params"),
    pytest.param({}, {"X-Request-Source": "tests", "Accept": "text/plain"}, id="caller-headers"),
]


@pytest.mark.parametrize(("params", "headers"), CALLS)
def test_a_call_sends_the_request_build_request_makes(
    params: dict[str, Any], headers: dict[str, str]
) -> None:
    upstream = Recorder()
    contract = contract_for("http://127.0.0.1:9/v1")
    client = ChatClient(contract, environ=env_for(KEY), transport=httpx2.MockTransport(upstream))
    client.complete(PONG, headers=headers, **params)
    [sent] = upstream.requests
    body = {"model": client.routes[0].model, "messages": PONG, **params}
    expected = _expected(client, sent, body, headers)
    assert sent.url == expected.url
    assert sent.headers.raw == expected.headers.raw
    assert sent.content == expected.content
    assert sent.extensions["timeout"] == expected.extensions["timeout"]


@pytest.mark.anyio
@pytest.mark.parametrize(("params", "headers"), CALLS)
async def test_an_async_call_sends_the_request_build_request_makes(
    params: dict[str, Any], headers: dict[str, str]
) -> None:
    upstream = Recorder()
    contract = contract_for("http://127.0.0.1:9/v1")
    async with AsyncChatClient(
        contract, environ=env_for(KEY), transport=httpx2.MockTransport(upstream)
    ) as client:
        await client.complete(PONG, headers=headers, **params)
    [sent] = upstream.requests
    body = {"model": client.routes[0].model, "messages": PONG, **params}
    expected = _expected(client, sent, body, headers)
    assert sent.headers.raw == expected.headers.raw
    assert sent.content == expected.content


@pytest.mark.parametrize(
    ("headers", "sets"),
    [
        pytest.param([("Content-Type", "application/json")], False, id="none"),
        pytest.param([("x-set-cookie-note", "a")], False, id="another-name"),
        pytest.param([("Set-Cookie", "a=1")], True, id="set-cookie-any-case"),
        pytest.param([("date", "x"), ("SET-COOKIE2", "a=1")], True, id="set-cookie2"),
    ],
)
def test_only_a_response_with_a_set_cookie_header_goes_to_the_cookie_jar(
    headers: list[tuple[str, str]], sets: bool
) -> None:
    assert _may_set_cookies(httpx2.Headers(headers)) is sets


def test_without_the_header_seam_the_cookie_jar_looks_itself() -> None:
    assert _may_set_cookies(object()) is True  # type: ignore[arg-type]


def test_a_cookie_set_under_a_capitalised_header_name_goes_back_too() -> None:
    def upstream(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=ANSWER, headers=[("Set-Cookie", "sid=1; Path=/")])

    contract = contract_for("http://127.0.0.1:9/v1")
    client = ChatClient(contract, environ=env_for(KEY), transport=httpx2.MockTransport(upstream))
    client.complete(PONG)
    assert dict(client._http[client.routes[0].name].cookies) == {"sid": "1"}


def test_a_cookie_the_provider_set_goes_back_on_the_next_call() -> None:
    upstream = Recorder(cookie="__cf_bm=abc")
    contract = contract_for("http://127.0.0.1:9/v1")
    client = ChatClient(contract, environ=env_for(KEY), transport=httpx2.MockTransport(upstream))
    client.complete(PONG)
    client.complete(PONG)
    first, second = upstream.requests
    assert "cookie" not in first.headers
    assert second.headers["cookie"] == "__cf_bm=abc"
    expected = _expected(client, second, {"model": client.routes[0].model, "messages": PONG}, {})
    assert second.headers.raw == expected.headers.raw


def test_a_retry_sends_the_first_attempts_body_bytes() -> None:
    answers = iter([httpx2.Response(503, json={"error": {"message": "busy"}})])
    sent: list[bytes] = []

    def upstream(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.content)
        return next(answers, None) or httpx2.Response(200, json=ANSWER)

    contract = contract_for("http://127.0.0.1:9/v1")
    client = ChatClient(
        contract,
        environ=env_for(KEY),
        transport=httpx2.MockTransport(upstream),
        sleep=lambda _: None,
    )
    result = client.complete(PONG, max_tokens=8)
    assert len(result.attempts) == 2
    assert sent[0] == sent[1]
    assert json.loads(sent[0]) == {
        "model": client.routes[0].model,
        "messages": PONG,
        "max_tokens": 8,
    }


def test_a_closed_client_refuses_to_send_as_httpx2_does() -> None:
    upstream = Recorder()
    contract = contract_for("http://127.0.0.1:9/v1")
    client = ChatClient(contract, environ=env_for(KEY), transport=httpx2.MockTransport(upstream))
    client.close()
    with pytest.raises(RuntimeError, match="the client has been closed"):
        client.complete(PONG)
    assert upstream.requests == []


@pytest.mark.anyio
async def test_a_closed_async_client_refuses_to_send_as_httpx2_does() -> None:
    upstream = Recorder()
    contract = contract_for("http://127.0.0.1:9/v1")
    client = AsyncChatClient(
        contract, environ=env_for(KEY), transport=httpx2.MockTransport(upstream)
    )
    await client.aclose()
    with pytest.raises(RuntimeError, match="the client has been closed"):
        await client.complete(PONG)
    assert upstream.requests == []


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
def test_each_attempt_logs_httpx2s_request_line(
    streamed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = Recorder()
    contract = contract_for("http://127.0.0.1:9/v1")
    client = ChatClient(contract, environ=env_for(KEY), transport=httpx2.MockTransport(upstream))
    with caplog.at_level(logging.INFO, logger="httpx2"):
        if streamed:
            with client.stream(PONG) as stream:
                stream.until_done()
        else:
            client.complete(PONG)
    [record] = [r for r in caplog.records if r.name == "httpx2"]
    assert record.getMessage() == (f'HTTP Request: POST {client.routes[0].url} "HTTP/1.1 200 OK"')


@pytest.mark.parametrize("streamed", [False, True], ids=["read", "stream"])
def test_a_transport_error_carries_the_request_sent(streamed: bool) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused")  # no request attached by the transport

    transport = httpx2.MockTransport(refuse)
    client = httpx2.Client(transport=transport)
    request = client.build_request("POST", "http://127.0.0.1:9/v1", json={})
    with pytest.raises(httpx2.ConnectError) as caught:
        send_sync(client, transport, request, stream=streamed)
    assert caught.value.request is request


@pytest.mark.anyio
async def test_a_body_that_fails_to_read_closes_the_response() -> None:
    closed: list[bool] = []

    class Broken(httpx2.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"{"
            raise httpx2.ReadError("cut")

        async def aclose(self) -> None:
            closed.append(True)

    transport = httpx2.MockTransport(lambda _: httpx2.Response(200, stream=Broken()))
    client = httpx2.AsyncClient(transport=transport)
    request = client.build_request("POST", "http://127.0.0.1:9/v1", json={})
    with pytest.raises(httpx2.ReadError):
        await send_async(client, transport, request)
    assert closed == [True]


def test_a_url_carrying_credentials_gets_no_template() -> None:
    # ``send`` would add basic auth from it (contracts refuse such URLs; a template must not
    # silently drop what ``send`` does).
    with pytest.raises(ValueError, match="credentials"):
        RequestTemplate(httpx2.Client(), "http://user:pw@127.0.0.1:9/v1", {})


def test_the_library_logger_is_never_a_chatcontract_one() -> None:
    assert library_logger("httpx2") is logging.getLogger("httpx2")
    with pytest.raises(ValueError, match="get_logger"):
        library_logger("chatcontract.client")
