"""N calls of ``PrometheusSink.handle_exchange`` on one typical success, for callgrind.

Run by ``benchmarks/callgrind_sink.sh`` (two call counts, differenced): the sink's own cost per
call, without the SDK or the transport around it, so small changes show above the noise.

    .venv/bin/python benchmarks/_sink_calls.py nonstream|stream N
"""

from __future__ import annotations

import gc
import sys
import time

from prometheus_client import CollectorRegistry

from chatcontract.contract import load_preset
from chatcontract.exchange import Exchange, RequestFacts, ResponseFacts, Timings
from chatcontract.telemetry import CallLabels, PrometheusSink
from chatcontract.wire import Usage

WARM_UP = 50


def main() -> None:
    mode, count = sys.argv[1], int(sys.argv[2])
    stream = mode == "stream"
    sink = PrometheusSink(CollectorRegistry(), contract=load_preset("cometapi"))
    labels = CallLabels(provider="cometapi", endpoint="/chat/completions")
    exchange = Exchange(
        request=RequestFacts(
            method="POST", url="http://127.0.0.1/v1/chat/completions", model="gpt-4.1-nano",
            stream=stream, include_usage=stream, timeout_budget_ms=600_000.0,
        ),
        response=ResponseFacts(
            status=200, usage=Usage(prompt_tokens=12, completion_tokens=5),
            stream_verdict="complete" if stream else None,
        ),
        timings=Timings(ttfb_ms=1.2, ttft_ms=1.5 if stream else None, total_ms=2.5),
        started_at=time.time(),
    )  # fmt: skip
    for _ in range(WARM_UP):
        sink.handle_exchange(exchange, labels)
    gc.freeze()  # what start-up left is never collected during the counted calls
    for _ in range(count):
        sink.handle_exchange(exchange, labels)


if __name__ == "__main__":
    main()
