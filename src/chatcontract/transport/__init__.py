"""Instrumented httpx2 transports (sync + async) that time phases, redact, and emit Exchanges."""

from __future__ import annotations

from chatcontract.exchange import Exchange, RequestFacts, ResponseFacts, Timings

from ._timing import install_backend, limit_reads
from .instrumented import (
    EXCHANGE_EXTENSION,
    STREAM_EXTENSION,
    AsyncInstrumentedTransport,
    InstrumentedTransport,
)
from .observer import CallObserver, ExchangeSink, request_facts

__all__ = [
    "EXCHANGE_EXTENSION",
    "STREAM_EXTENSION",
    "AsyncInstrumentedTransport",
    "CallObserver",
    "Exchange",
    "ExchangeSink",
    "InstrumentedTransport",
    "RequestFacts",
    "ResponseFacts",
    "Timings",
    "install_backend",
    "limit_reads",
    "request_facts",
]
