"""Instrumented httpx2 transports (sync + async) that time phases, redact, and emit Exchanges."""

from __future__ import annotations

from ._timing import install_backend
from .deferred import DeferredCall, flush
from .exchange import Exchange, RequestFacts, ResponseFacts, Timings
from .instrumented import AsyncInstrumentedTransport, InstrumentedTransport
from .observer import CallObserver, ExchangeSink, request_facts

__all__ = [
    "AsyncInstrumentedTransport",
    "CallObserver",
    "DeferredCall",
    "Exchange",
    "ExchangeSink",
    "InstrumentedTransport",
    "RequestFacts",
    "ResponseFacts",
    "Timings",
    "flush",
    "install_backend",
    "request_facts",
]
