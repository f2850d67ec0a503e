"""Generated ledgers and provider exports for the reconcile tests."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PRICES = {"gpt-4o-mini": (0.12, 0.48)}
DAY = "2026-12-05"


def at(clock: str, day: str = DAY) -> float:
    """Epoch seconds of ``HH:MM[:SS]`` UTC on ``day``."""
    return dt.datetime.fromisoformat(f"{day}T{clock}+00:00").timestamp()


def iso(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cost(prompt: int, completion: int, model: str = "gpt-4o-mini") -> float:
    price_in, price_out = PRICES[model]
    return (prompt * price_in + completion * price_out) / 1e6


def record(
    time: float,
    request_id: str | None,
    *,
    prompt: int | None = 100,
    completion: int | None = 20,
    model: str = "gpt-4o-mini",
    answered: str | None = None,
    status: int | None = 200,
    kind: str | None = None,
    duration_ms: float = 500.0,
) -> dict[str, Any]:
    """A ledger line as ``UsageLedger`` writes it."""
    missing = prompt is None and completion is None
    price = PRICES.get(model)
    line: dict[str, Any] = {
        "v": 1,
        "time": iso(time),
        "duration_ms": duration_ms,
        "provider": "cometapi",
        "endpoint": "/chat/completions",
        "route": "primary",
        "attempt": 1,
        "request_ids": [] if request_id is None else [request_id],
        "response_id": None,
        "model_requested": model,
        "model_answered": answered if answered is not None else (None if status is None else model),
        "stream": False,
        "status": status,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": None if missing else (prompt or 0) + (completion or 0),
        "usage_missing": missing,
        "cost_usd": None if missing or price is None else cost(prompt or 0, completion or 0, model),
        "price": None
        if price is None
        else {"input_per_million": price[0], "output_per_million": price[1]},
        "outcome": "success" if kind is None else "failure",
    }
    if kind is not None:
        line.update(kind=kind, category="upstream", code="x")
    return line


def write_ledger(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def bucket(start: float, end: float, *results: tuple[str | None, int, int, int]) -> dict[str, Any]:
    """An OpenAI completions usage bucket; results are (model, input, output, requests)."""
    return {
        "object": "bucket",
        "start_time": int(start),
        "end_time": int(end),
        "results": [
            {
                "object": "organization.usage.completions.result",
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "input_cached_tokens": 0,
                "input_audio_tokens": 0,
                "output_audio_tokens": 0,
                "num_model_requests": requests,
                "project_id": None,
                "user_id": None,
                "api_key_id": None,
                "model": model,
                "batch": None,
            }
            for model, input_tokens, output_tokens, requests in results
        ],
    }


def page(*buckets: dict[str, Any], next_page: str | None = None) -> dict[str, Any]:
    return {"object": "page", "data": list(buckets), "has_more": next_page is not None,
            "next_page": next_page}  # fmt: skip
