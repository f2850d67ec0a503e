"""A tiny healthy chat completions server that answers in about a millisecond.

Not the simulator: a plain stdlib HTTP/1.1 server (one thread per connection) on 127.0.0.1
and a free port, so tests prove that the deadline and interruption checks hold on a fast
endpoint nobody made slow. ``POST .../chat/completions`` answers JSON, or SSE (chunked) when
the body says ``"stream": true``; ``/echo`` answers the request headers it received as JSON;
any other route is a 404. Every key is accepted.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "gpt-4.1-nano-2025-04-14"
USAGE = {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9}


def _chunk(delta: dict, finish_reason: str | None = None, *, usage=None, choices=True) -> bytes:
    body = {
        "id": "chatcmpl-fast",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
        if choices
        else [],
        "usage": usage,
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # No Nagle delay: the point of this server is answering in about a millisecond.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests stay quiet

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        if self.path == "/echo":
            self._send(200, json.dumps([[k.lower(), v] for k, v in self.headers.items()]).encode())
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "no such route", "type": "not_found"}}')
            return
        try:
            request = json.loads(raw)
        except ValueError:
            self._send(400, b'{"error": {"message": "bad json", "type": "invalid_request"}}')
            return
        if request.get("stream"):
            self._stream(request)
        else:
            body = {
                "id": "chatcmpl-fast",
                "object": "chat.completion",
                "created": 1,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "pong"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": USAGE,
            }
            self._send(200, json.dumps(body).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", "req-fast-1")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, request: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Request-Id", "req-fast-1")
        self.end_headers()
        events = [
            _chunk({"role": "assistant", "content": ""}),
            _chunk({"content": "po"}),
            _chunk({"content": "ng"}),
            _chunk({}, "stop"),
        ]
        if (request.get("stream_options") or {}).get("include_usage"):
            events.append(_chunk({}, usage=USAGE, choices=False))
        events.append(b"data: [DONE]\n\n")
        for event in events:
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


class FastServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    scheme = "http"

    @property
    def root_url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"


@contextmanager
def fast_server(tls: ssl.SSLContext | None = None) -> Iterator[FastServer]:
    """The server on 127.0.0.1 and a free port (HTTPS with ``tls``), stopped on exit."""
    server = FastServer(("127.0.0.1", 0), _Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        server.scheme = "https"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
