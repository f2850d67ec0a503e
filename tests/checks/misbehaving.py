"""Small stand-alone OpenAI-compatible servers that misbehave the way real ones do.

Each reproduces one deviation measured on a real server (``../shared/research/real-servers.md``:
llama-cpp-python 0.3.36 and the LiteLLM proxy 1.108.7), so the validate suite can be judged
against it without installing either. They speak HTTP/1.1 themselves (raw asyncio, one thread,
127.0.0.1, a free port) because one misbehaviour lives below any framework: after a bad
request, llama-cpp-python keeps the keep-alive connection open without ``Connection: close``
and the next request on it gets no answer.

    with serve(NoAuth()) as server:
        server.base_url   # http://127.0.0.1:<port>/v1

Every server answers at once (the "1 ms answers" of a local model server).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

KEY = "sk-misbehaving-test-key-1234"
MODEL = "tiny-model"
CONTEXT_WINDOW_BYTES = 4_000  # the validate suite's large prompt is about 8 KB

#: The longest a server waits for a request on an open connection (bounded tests).
_IDLE_S = 10.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: After this answer, the connection looks alive but the next request on it is read and
    #: dropped without a byte (llama-cpp-python after a 500 for bad JSON).
    poison: bool = False


def _json_reply(status: int, doc: Any, **headers: str) -> Reply:
    return Reply(
        status,
        json.dumps(doc).encode(),
        {"content-type": "application/json", **headers},
    )


def _error(status: int, message: str, *, type_: str, code: str | None, **headers: str) -> Reply:
    return _json_reply(
        status,
        {"error": {"message": message, "type": type_, "param": None, "code": code}},
        **headers,
    )


class Server:
    """A well-behaved OpenAI-compatible chat completions server; subclasses misbehave."""

    request_id_header = "x-request-id"

    def __init__(self) -> None:
        self.calls = 0

    # -- the parts a misbehaving server overrides ------------------------------------------

    def auth(self, request: Request) -> Reply | None:
        value = request.headers.get("authorization")
        if value is None:
            return _error(
                401, "You didn't provide an API key.", type_="invalid_request_error", code=None
            )
        if value != f"Bearer {KEY}":
            return _error(
                401,
                "Incorrect API key provided.",
                type_="invalid_request_error",
                code="invalid_api_key",
            )
        return None

    def bad_json(self, request: Request) -> Reply:
        return _error(
            400,
            "We could not parse the JSON body of your request.",
            type_="invalid_request_error",
            code=None,
        )

    def missing(self, name: str) -> Reply | None:
        return _error(
            400,
            f"Missing required parameter: '{name}'.",
            type_="invalid_request_error",
            code="missing_required_parameter",
        )

    def unknown_model(self, model: str) -> Reply | None:
        return _error(
            404,
            f"The model `{model}` does not exist.",
            type_="invalid_request_error",
            code="model_not_found",
        )

    def completion_tokens(self, max_tokens: int) -> int:
        return min(2, max_tokens)

    def limited(self, call: int) -> Reply | None:
        """A 429 for this chat call (numbered from 1), or None."""
        return None

    def stream_usage(self) -> bool:
        return True

    # -- the protocol -----------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        if request.method != "POST" or not request.path.endswith("/chat/completions"):
            return _error(404, "not found", type_="invalid_request_error", code=None)
        denied = self.auth(request)
        if denied is not None:
            return denied
        try:
            body = request.json()
        except ValueError:
            return self.bad_json(request)
        if not isinstance(body, dict):
            return self.bad_json(request)
        for name in ("model", "messages"):
            if name not in body:
                refused = self.missing(name)
                if refused is not None:
                    return refused
        model = str(body.get("model", MODEL))
        if model != MODEL:
            refused = self.unknown_model(model)
            if refused is not None:
                return refused
        size = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        if size > CONTEXT_WINDOW_BYTES:
            refused = self.too_long(size)
            if refused is not None:
                return refused
        self.calls += 1
        limited = self.limited(self.calls)
        if limited is not None:
            return limited
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        usage = self._usage(self.completion_tokens(max_tokens))
        ids = {self.request_id_header: f"req-{self.calls}"} if self.request_id_header else {}
        if body.get("stream"):
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self._stream(model, usage if wants_usage and self.stream_usage() else None, ids)
        return _json_reply(
            200,
            {
                "id": f"chatcmpl-{self.calls}",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "pong"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
            **ids,
        )

    def too_long(self, size: int) -> Reply | None:
        return None  # a large context window: every prompt of the suite fits

    def usage_chunk_choices(self) -> list[Any]:
        return []

    @staticmethod
    def _usage(completion: int) -> dict[str, int]:
        return {
            "prompt_tokens": 12,
            "completion_tokens": completion,
            "total_tokens": 12 + completion,
        }

    def _stream(self, model: str, usage: dict[str, int] | None, ids: dict[str, str]) -> Reply:
        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": f"chatcmpl-{self.calls}",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        events = [
            chunk({"role": "assistant", "content": ""}, None),
            chunk({"content": "pong"}, None),
            chunk({}, "stop"),
        ]
        if usage is not None:
            events.append(
                {
                    "id": f"chatcmpl-{self.calls}",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": model,
                    "choices": self.usage_chunk_choices(),
                    "usage": usage,
                }
            )
        body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
        return Reply(200, body + b"data: [DONE]\n\n", {"content-type": "text/event-stream", **ids})


# ----------------------------------------------------------------------------- misbehaviours


class NoAuth(Server):
    """llama-cpp-python: no auth at all, any key or none gets a 200."""

    def auth(self, request: Request) -> Reply | None:
        return None


class AcceptsMissingField(Server):
    """llama-cpp-python: a request without ``messages`` gets a 200."""

    def missing(self, name: str) -> Reply | None:
        return None if name == "messages" else super().missing(name)


class UsageOverMaxTokens(Server):
    """llama-cpp-python (~40% of answers) and LiteLLM's mock model (always 20): more completion
    tokens than ``max_tokens``, with a total that adds up."""

    def completion_tokens(self, max_tokens: int) -> int:
        return max_tokens + 4


class DropsKeepAliveAfterBadJson(Server):
    """llama-cpp-python: bad JSON gets a 500 ``text/plain``, then the keep-alive connection is
    dead without ``Connection: close``: the next request on it gets no answer."""

    def bad_json(self, request: Request) -> Reply:
        return Reply(
            500,
            b"Internal Server Error",
            {"content-type": "text/plain; charset=utf-8"},
            poison=True,
        )


class SmallContextWindow(Server):
    """llama-cpp-python with ``--n_ctx 512``: a large prompt gets 400 context length."""

    def too_long(self, size: int) -> Reply | None:
        tokens = size // 4
        return _error(
            400,
            f"Requested tokens ({tokens}) exceed context window of 512",
            type_="invalid_request_error",
            code="context_length_exceeded",
        )


class NoStreamUsage(Server):
    """llama-cpp-python: no usage chunk even with ``stream_options.include_usage``."""

    def stream_usage(self) -> bool:
        return False


class LiteLLMCodes(Server):
    """The LiteLLM proxy without a database: error codes rewritten into the status text.

    A missing key is 401 ``auth_error``; a wrong key is ``400 no_db_connection``; an unknown
    model is 400 "Invalid model name passed in model=…"; every ``code`` is the status as a
    string (a 429 says ``"429"``); the request id header is ``x-litellm-call-id``; the
    stream's usage chunk carries ``choices: [{"index": 0, "delta": {}}]``. Chat call 3 is
    rate limited with ``retry-after: 1`` and chat call 6 without a hint (a mid-run 429).
    """

    request_id_header = "x-litellm-call-id"

    @staticmethod
    def _litellm(status: int, message: str, type_: str = "None", **headers: str) -> Reply:
        return _json_reply(
            status,
            {"error": {"message": message, "type": type_, "param": "None", "code": str(status)}},
            **headers,
        )

    def auth(self, request: Request) -> Reply | None:
        value = request.headers.get("authorization")
        if value is None:
            return self._litellm(401, "Authentication Error, No api key passed in.", "auth_error")
        if value != f"Bearer {KEY}":
            return self._litellm(
                400,
                "Authentication Error, No connected db.",
                "no_db_connection",
            )
        return None

    def bad_json(self, request: Request) -> Reply:
        return self._litellm(400, "Invalid JSON payload received.")

    def missing(self, name: str) -> Reply | None:
        return self._litellm(400, f"litellm.BadRequestError: {name} is a required property")

    def unknown_model(self, model: str) -> Reply | None:
        return self._litellm(
            400,
            f"/chat/completions: Invalid model name passed in model={model}. "
            "Call `/v1/models` to view available models for your key.",
        )

    def limited(self, call: int) -> Reply | None:
        if call == 3:
            return self._litellm(429, "Rate limit reached for tiny-model.", **{"retry-after": "1"})
        if call == 6:
            return self._litellm(429, "Rate limit reached for tiny-model.")
        return None

    def usage_chunk_choices(self) -> list[Any]:
        return [{"index": 0, "delta": {}}]


# ---------------------------------------------------------------------------------- serving


class Running:
    """A server listening on 127.0.0.1 in a thread of its own."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._run, name="misbehaving-server", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test server did not start within 10 s")

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        listener = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = listener.sockets[0].getsockname()[1]
        self._ready.set()
        async with listener:
            await self._stop.wait()
            listener.close()
            # Close every open connection and let its task end, so nothing is left pending.
            for writer in list(self._writers):
                writer.close()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=5)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        poisoned = False
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                request = await asyncio.wait_for(_read_request(reader), _IDLE_S)
                if request is None:
                    break
                if poisoned:
                    break  # read, then dropped without a byte: the client sees a reset
                reply = self.server.handle(request)
                writer.write(_encode(reply))
                await writer.drain()
                poisoned = reply.poison
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method=method, path=path, headers=headers, body=body)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def _encode(reply: Reply) -> bytes:
    head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
    headers = {**reply.headers, "content-length": str(len(reply.body))}
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body


@contextlib.contextmanager
def serve(server: Server) -> Iterator[Running]:
    """Run ``server`` on 127.0.0.1 and a free port for the duration of the block."""
    running = Running(server)
    running.start()
    try:
        yield running
    finally:
        running.stop()
