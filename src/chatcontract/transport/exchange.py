"""Compatibility: the ``Exchange`` lives in ``chatcontract.exchange`` (a pure module)."""

from chatcontract.exchange import Exchange, RequestFacts, ResponseFacts, Timings

__all__ = ["Exchange", "RequestFacts", "ResponseFacts", "Timings"]
