"""A JSON event log: one line per Exchange and per client decision, through stdlib logging.

Every failure is logged (WARNING); successes are sampled at ``shadow_rate`` (INFO), the
runbooks' production shadow check: a small, steady sample of good calls whose fingerprints,
ids and timings can be compared with the accepted baseline. Lines carry shape and outcome
only, from ``Exchange.to_dict()``: never the prompt, never the completion text, never a key,
and the whole line goes through ``redact_text`` once more before it is written.

Example::

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log = JsonEventLog(shadow_rate=0.01, secrets=[api_key])
    telemetry = Telemetry([log], CallLabels(provider="cometapi", endpoint="/chat/completions"))
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import orjson

from chatcontract._log import get_logger
from chatcontract.errors import ConfigError
from chatcontract.exchange import Exchange
from chatcontract.redact import known_secrets, redact_text

from .events import (
    BreakerChanged,
    BudgetRefusal,
    CallLabels,
    ClientEvent,
    DeadlineExhausted,
    FallbackActivated,
    RetryDecided,
    RetrySucceeded,
)

__all__ = ["DEFAULT_SHADOW_RATE", "EVENT_LOGGER", "JsonEventLog"]

#: The stdlib logger the lines go to unless another is given.
EVENT_LOGGER = "chatcontract.events"
#: One success in a hundred: enough to watch shapes, cheap at any traffic.
DEFAULT_SHADOW_RATE = 0.01

# Client event → (event name in the line, level). Decisions that lose traffic or money warn.
_EVENTS: dict[type, tuple[str, int]] = {
    RetryDecided: ("retry_decided", logging.INFO),
    RetrySucceeded: ("retry_succeeded", logging.INFO),
    FallbackActivated: ("fallback_activated", logging.WARNING),
    BudgetRefusal: ("budget_refusal", logging.WARNING),
    DeadlineExhausted: ("deadline_exhausted", logging.WARNING),
    BreakerChanged: ("breaker_changed", logging.WARNING),
}


class JsonEventLog:
    """A ``TelemetrySink`` writing one JSON line per failure, sampled success and client event.

    Args:
        logger: where lines go (default: the ``chatcontract.events`` logger).
        shadow_rate: the fraction of successful calls logged, 0 to 1 (failures: all).
        rng: returns a float in [0, 1) per success; inject one to make sampling deterministic.
        secrets: strings redacted from every line (the API key), on top of the
            credential-shaped patterns ``redact_text`` always removes.
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        shadow_rate: float = DEFAULT_SHADOW_RATE,
        rng: Callable[[], float] = random.random,
        secrets: Sequence[str] = (),
    ) -> None:
        if isinstance(shadow_rate, bool) or not isinstance(shadow_rate, int | float):
            raise ConfigError(f"shadow_rate must be a number between 0 and 1, got {shadow_rate!r}")
        if not 0.0 <= shadow_rate <= 1.0:
            raise ConfigError(
                f"shadow_rate must be between 0 and 1 (e.g. 0.01 logs one success in a "
                f"hundred), got {shadow_rate}"
            )
        self.logger = logger if logger is not None else get_logger(EVENT_LOGGER)
        self.shadow_rate = float(shadow_rate)
        self._rng = rng
        self._secrets = known_secrets(secrets)

    def handle_exchange(self, exchange: Exchange, labels: CallLabels) -> None:
        """Log a failure always, a success when sampled."""
        if exchange.failure is not None:
            level = logging.WARNING
        elif self.shadow_rate > 0.0 and self._rng() < self.shadow_rate:
            level = logging.INFO
        else:
            return
        if not self.logger.isEnabledFor(level):
            return
        record = exchange.to_dict()
        response = record.get("response")
        if isinstance(response, dict):
            response.pop("content", None)  # never, even when a transport captured it
        line: dict[str, Any] = {
            "event": "exchange",
            "provider": labels.provider,
            "endpoint": labels.endpoint,
            "request_id": exchange.request_id,
            **record,
        }
        if exchange.failure is None:
            line["shadow_rate"] = self.shadow_rate
        self._write(level, line)

    def handle_event(self, event: ClientEvent, labels: CallLabels) -> None:
        """Log a client decision (retry, fallback, refusal, deadline)."""
        name, level = _EVENTS.get(type(event), ("client_event", logging.INFO))
        if not self.logger.isEnabledFor(level):
            return
        line = {"event": name, "provider": labels.provider, "endpoint": labels.endpoint}
        line.update(asdict(event))
        self._write(level, line)

    def _write(self, level: int, line: dict[str, Any]) -> None:
        text = orjson.dumps(line, default=str).decode()
        self.logger.log(level, redact_text(text, self._secrets))
