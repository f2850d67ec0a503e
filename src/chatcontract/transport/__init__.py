"""Instrumented httpx2 transports (sync + async) that time phases, redact, and emit Exchanges."""

from __future__ import annotations

from ._timing import install_backend
from .exchange import Exchange, RequestFacts, ResponseFacts, Timings
from .instrumented import AsyncInstrumentedTransport, InstrumentedTransport
from .observer import CallObserver, ExchangeSink, request_facts

__all__ = [
    "AsyncInstrumentedTransport",
    "CallObserver",
    "Exchange",
    "ExchangeSink",
    "InstrumentedTransport",
    "RequestFacts",
    "ResponseFacts",
    "Timings",
    "install_backend",
    "request_facts",
]
