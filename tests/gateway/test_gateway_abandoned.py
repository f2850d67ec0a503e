"""A stream the downstream client abandons at the last payload of a timed-out attempt: the
gateway still reports the attempt, exactly once.

The upstream below sends one whole event (a large one), then one that lost its blank line,
then nothing: the idle limit ends the attempt, and the event the parser completes on close is
the last payload the gateway forwards. The downstream client reads the start of the stream and
stops reading, so the first payload fills the socket buffers and the gateway waits to send the
last one. The attempt's outcome reaches telemetry before that payload is handed over, so the
gateway's Prometheus sink counts the stalled attempt while the gateway waits; the client then
goes away, which cancels the call right there, and the attempt is neither lost nor counted
twice. (Reported after the payload, as before the fix, it is never counted: the wait below
for the count runs out.)
"""

from __future__ import annotations

import json
import socket

from gateway_helpers import PROMPT, contract_for, env_for, eventually
from prometheus_client import CollectorRegistry

from chatcontract.contract import Streaming, Timeouts
from chatcontract.gateway import GatewayServer, GatewayState, create_app
from chatcontract.telemetry import PrometheusSink
from raw_servers import raw_server, stall_after_a_torn_event, timeouts_counted

#: Far more than the socket buffers hold while the client does not read: the gateway's writes
#: back up, and it waits before sending the last payload.
HEAD_TEXT = "x" * 4_000_000
TAIL_TEXT = " world"
IDLE_MS = 200
TIMEOUTS = Timeouts(
    connect_ms=1_000, first_byte_ms=2_000, first_token_ms=2_000, idle_ms=IDLE_MS, total_ms=20_000
)


def _stream_until_the_head(root_url: str, model: str) -> socket.socket:
    """A downstream client that asks for a stream, reads up to the start of the first text,
    then stops reading (a small receive buffer: the gateway's writes back up at once)."""
    host, port = root_url.removeprefix("http://").split(":")
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(10)
    client.connect((host, int(port)))
    body = json.dumps({"model": model, "messages": PROMPT, "stream": True}).encode()
    client.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    )
    seen = b""
    while b'"content":"xxxx' not in seen:
        piece = client.recv(4096)
        assert piece, f"the gateway closed the stream before the first text: {seen!r}"
        seen += piece
    return client


def test_a_client_gone_at_the_last_payload_of_a_timed_out_attempt_leaves_it_counted_once():
    with raw_server(stall_after_a_torn_event(HEAD_TEXT, TAIL_TEXT, silent_s=10)) as upstream:
        contract = contract_for(upstream.base_url, timeouts=TIMEOUTS, streaming=Streaming())
        registry = CollectorRegistry()
        state = GatewayState(
            contract,
            environ=env_for("sk-upstream"),
            telemetry_sinks=[PrometheusSink(registry, contract=contract)],
        )
        with GatewayServer(create_app(state)) as gateway:
            client = _stream_until_the_head(gateway.root_url, state.routes[0].model)
            try:
                # The idle limit ends the attempt; its outcome is reported before the last
                # payload goes out, and that payload cannot: the client does not read.
                assert eventually(lambda: bool(timeouts_counted(registry)))
            finally:
                client.close()  # the client goes away in the middle of that last payload
            assert eventually(lambda: state.in_flight == 0)
            assert upstream.requests == 1  # no other attempt: the call ended with the client
    assert timeouts_counted(registry) == {("primary", "stream_stalled"): 1.0}
