"""Benchmark: what observing a call costs, per call, against the local simulator.

Baseline: the official openai SDK with a plain ``httpx2.Client``. Measured: the same SDK with
``chatcontract.instrument()`` (a Prometheus sink on a private registry and the JSON event log at
its production shadow rate, written to a real handler), as configured by default: successful
calls are observed off the critical path, in the next wait for the server (``defer=True``). A
third, informational row runs ``instrument(defer=False)``, every call observed before it returns.
Each row also shows the client process's CPU per call: deferral hides the observing work in
the wait for the server, it does not make it free. After the run every instrumented row's
``llm_request_total`` must equal the calls made (deferred ones included), or the run fails.

The simulator runs in a subprocess (``python -m chatcontract simulate --port N``), started here,
waited for until it answers, and stopped at the end. Variants are interleaved in rounds (A, B, C,
then again) so drift in the machine or the server hits them alike; each round runs a small
batch per variant. Counts are bounded. Prints median and p90 per call and the ratio to the
baseline; the target is at most 5% slower at the median.

A ChatClient row (``chatcontract.client.ChatClient``) is measured the same way when that
module exists; otherwise it is skipped with a note (no numbers are made up).

Run::

    .venv/bin/python benchmarks/bench_client.py [--rounds 30] [--batch 20] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import importlib.util
import io
import logging
import os
import pstats
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from prometheus_client import CollectorRegistry

from chatcontract import instrumentation as instrument_module
from chatcontract.telemetry import DEFAULT_SHADOW_RATE

API_KEY = "sk-chatcontract-local"
MODEL = "gpt-4.1-nano"
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark in one sentence."}]
STARTUP_TIMEOUT_S = 20.0
TARGET_RATIO = 1.05


# --- the simulator subprocess -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def simulator() -> Iterator[str]:
    """``python -m chatcontract simulate`` on a free port; yields its base URL."""
    port = _free_port()
    argv = [sys.executable, "-m", "chatcontract", "simulate", "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_answering(base_url, proc)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()


def _wait_until_answering(base_url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx2.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise SystemExit(f"the simulator exited ({proc.returncode}): {err[-500:]}")
            try:
                response = client.get(
                    base_url + "/models", headers={"Authorization": f"Bearer {API_KEY}"}
                )
                if response.status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
    raise SystemExit(f"the simulator did not answer within {STARTUP_TIMEOUT_S:.0f} s")


# --- variants -----------------------------------------------------------------------------------

Call = Callable[[], Any]


@dataclass(slots=True)
class Variant:
    name: str
    call: Call
    close: Callable[[], None]
    samples_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    #: Reads back how many calls the variant's telemetry counted (None: nothing to check).
    counted: Callable[[], float | None] = lambda: None

    def run(self, count: int) -> None:
        cpu = time.process_time()
        for _ in range(count):
            started = time.perf_counter()
            self.call()
            self.samples_ms.append((time.perf_counter() - started) * 1000.0)
        self.cpu_s += time.process_time() - cpu

    def cpu_ms_per_call(self) -> float:
        return self.cpu_s * 1000.0 / max(1, len(self.samples_ms))

    def median(self) -> float:
        return statistics.median(self.samples_ms)

    def p90(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def _sdk_call(sdk: openai.OpenAI, *, stream: bool) -> Call:
    if not stream:

        def call() -> Any:
            completion = sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
            if not completion.choices[0].message.content:
                raise SystemExit("the simulator returned no content")
            return completion

        return call

    def call_stream() -> Any:
        chunks = sdk.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        count = sum(1 for _ in chunks)
        if count < 2:
            raise SystemExit("the simulator returned an empty stream")
        return count

    return call_stream


def _event_logger() -> logging.Logger:
    """The event log's logger with a real handler (to /dev/null), as in production."""
    logger = logging.getLogger("chatcontract.events")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives for the run
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger


def plain_variant(base_url: str, *, stream: bool) -> Variant:
    """Baseline: the openai SDK with a plain httpx2.Client."""
    sdk = openai.OpenAI(
        base_url=base_url, api_key=API_KEY, max_retries=0, http_client=httpx2.Client()
    )
    return Variant(
        "openai SDK + httpx2.Client (baseline)", _sdk_call(sdk, stream=stream), sdk.close
    )


def instrumented_variant(base_url: str, *, stream: bool, defer: bool = True) -> Variant:
    """The openai SDK with instrument(): Prometheus sink + event log at the shadow rate.

    ``defer=True`` is instrument()'s default (observed in the next wait for the server);
    ``defer=False`` observes every call before it returns (informational row)."""
    _event_logger()
    registry = CollectorRegistry()
    http = instrument_module.instrument(
        registry=registry, shadow_rate=DEFAULT_SHADOW_RATE, secrets=[API_KEY], defer=defer
    )
    sdk = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0, http_client=http)
    labels = {"provider": "cometapi", "endpoint": "/chat/completions", "model": MODEL,
              "stream": "true" if stream else "false", "route": "primary"}  # fmt: skip
    if defer:
        name = f"openai SDK + instrument() (prometheus, events @ {DEFAULT_SHADOW_RATE:g})"
    else:
        name = "  (instrument(defer=False): observed before returning)"
    return Variant(
        name,
        _sdk_call(sdk, stream=stream),
        sdk.close,
        counted=lambda: registry.get_sample_value("llm_request_total", labels),
    )


def chat_client_variant(base_url: str, *, stream: bool) -> Variant | None:
    """``chatcontract.client.ChatClient`` with the same sinks, when that module exists.

    Kept apart so the client's engineer can adjust it to the ChatClient API; returns None
    (and the row is skipped with a note) when the module is not importable.
    """
    if importlib.util.find_spec("chatcontract.client") is None:
        return None
    # Imported here: the client is another part of the package and may not exist yet.
    from chatcontract.client import ChatClient
    from chatcontract.contract import load_preset
    from chatcontract.telemetry import JsonEventLog, PrometheusSink

    preset = load_preset("cometapi")
    contract = dataclasses.replace(
        preset, endpoint=dataclasses.replace(preset.endpoint, base_url=base_url)
    )
    _event_logger()
    sinks = [
        PrometheusSink(CollectorRegistry(), contract=contract),
        JsonEventLog(shadow_rate=DEFAULT_SHADOW_RATE, secrets=[API_KEY]),
    ]
    client = ChatClient(
        contract, model=MODEL, environ={preset.auth.env[0]: API_KEY}, telemetry_sinks=sinks
    )
    if stream:

        def call() -> Any:
            return sum(1 for _ in client.stream(MESSAGES))

    else:

        def call() -> Any:
            return client.complete(MESSAGES)

    return Variant("chatcontract ChatClient (prometheus, events)", call, client.close)


# --- the run ------------------------------------------------------------------------------------


def measure(variants: list[Variant], *, rounds: int, batch: int, warmup: int) -> None:
    for variant in variants:
        variant.run(warmup)
        variant.samples_ms.clear()
        variant.cpu_s = 0.0
    for index in range(rounds):
        # Rotate the order each round so no variant always runs first after a pause.
        shift = index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            variant.run(batch)


def report(title: str, variants: list[Variant]) -> float:
    baseline = variants[0].median()
    print(f"\n{title}")
    print(
        f"  {'variant':<60} {'calls':>6} {'median ms':>10} {'p90 ms':>8} {'ratio':>7} "
        f"{'CPU ms/call':>12}"
    )
    for variant in variants:
        ratio = variant.median() / baseline
        print(
            f"  {variant.name:<60} {len(variant.samples_ms):>6} {variant.median():>10.3f} "
            f"{variant.p90():>8.3f} {ratio:>7.3f} {variant.cpu_ms_per_call():>12.3f}"
        )
    return variants[1].median() / baseline


def check_counts(variants: list[Variant], *, calls: int) -> None:
    """Every call was metered, deferred ones included (a registry read flushes them)."""
    for variant in variants:
        counted = variant.counted()
        if counted is not None and counted != calls:
            raise SystemExit(f"{variant.name.strip()}: {counted:g} calls metered, {calls} made")


def run_mode(base_url: str, *, stream: bool, rounds: int, batch: int, warmup: int) -> float:
    variants = [
        plain_variant(base_url, stream=stream),
        instrumented_variant(base_url, stream=stream),
        instrumented_variant(base_url, stream=stream, defer=False),
    ]
    chat_client, note = None, "chatcontract.client.ChatClient is not available"
    try:
        chat_client = chat_client_variant(base_url, stream=stream)
    except Exception as exc:  # the client is another part: report it, never fake a row
        note = f"it could not be built: {exc!r}"
    if chat_client is not None:
        variants.append(chat_client)
    try:
        measure(variants, rounds=rounds, batch=batch, warmup=warmup)
        ratio = report("streaming" if stream else "non-streaming", variants)
        check_counts(variants, calls=warmup + rounds * batch)
    finally:
        for variant in variants:
            variant.close()
    if chat_client is None:
        print(f"  note: ChatClient row skipped: {note}")
    return ratio


def profile(base_url: str, *, stream: bool, calls: int) -> None:
    """cProfile of the instrumented variant: where the per-call time goes."""
    variant = instrumented_variant(base_url, stream=stream, defer=False)
    variant.run(50)
    profiler = cProfile.Profile()
    profiler.enable()
    variant.run(calls)
    profiler.disable()
    variant.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
    print(f"\nprofile ({'stream' if stream else 'non-stream'}, {calls} calls, cumulative):")
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds (default 30)")
    parser.add_argument("--batch", type=int, default=20, help="calls per variant per round")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up calls per variant")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile")
    args = parser.parse_args(argv)
    rounds = max(1, min(args.rounds, 200))
    batch = max(1, min(args.batch, 200))
    with simulator() as base_url:
        print(f"simulator at {base_url}; {rounds} rounds x {batch} calls per variant, interleaved")
        ratios = {
            "non-streaming": run_mode(
                base_url, stream=False, rounds=rounds, batch=batch, warmup=args.warmup
            ),
            "streaming": run_mode(
                base_url, stream=True, rounds=rounds, batch=batch, warmup=args.warmup
            ),
        }
        if args.profile:
            profile(base_url, stream=False, calls=500)
            profile(base_url, stream=True, calls=300)
    print()
    for mode, ratio in ratios.items():
        verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
        print(f"{mode}: instrument()/baseline median ratio {ratio:.3f} "
              f"(target <= {TARGET_RATIO:.2f}): {verdict}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
