"""Faults on demand: every scenario the simulator can play, as one table.

A scenario is chosen per server (``create_app(scenario=...)``, ``--scenario``) or per request (the
``X-Chatcontract-Scenario`` header wins). It applies to ``POST /v1/chat/completions`` only, and
only to a request that passed authentication and validation — the same order as the real gateway,
where faults come from the upstream or the edge after the request was accepted.

A scenario is built from four independent parts, each optional:

- ``reply``: a canned non-success answer from the flavor's table (same in both modes).
- ``answer``: a change to what the assistant says (empty, filtered, truncated, unfinished).
- ``body`` / ``chunks``: a change to the wire shape of the JSON body or of the stream's chunks.
- ``delivery``: how the bytes reach the client (delays, stalls, cuts, no answer at all).

Recovery scenarios add a *when*: ``fault_count`` (only the first N requests, e.g. ``500
once``), ``fault_window_ms`` (from the first request for that long, e.g. a 60 s outage;
``flap_every`` lets every Nth request inside it through) and ``only_if`` (a request test, e.g.
"ends with an assistant message"). Outside it the request gets the ``ok`` answer. Counts and
windows are state of one server instance, per scenario and ``X-Chatcontract-State-Key``;
``POST /_chatcontract/reset`` clears them. Every duration is multiplied by the time scale.

Each row says in words what a non-streaming and a streaming request get.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal

from chatcontract.simulator.answers import Answer
from chatcontract.simulator.flavors import Situation

__all__ = ["SCENARIOS", "SCENARIO_NAMES", "Delivery", "RetryAfter", "Scenario", "faulted"]

# Defaults keep test suites fast; a slow stall or a held request is still bounded.
SLOW_DEFAULT_MS = 2_000
STALL_DEFAULT_MS = 60_000
HOLD_DEFAULT_MS = 600_000
#: A first token this late misses an interactive first_token_ms (10 s) by far.
LATE_FIRST_TOKEN_MS = 20_000
#: The retry-after window of the rate-limit scenarios, and the length of the outage.
RETRY_AFTER_MS = 1_000
OUTAGE_MS = 60_000
#: Inside the outage, every this-many-th request gets through (a flapping route).
FLAP_EVERY = 5

#: Which retry-after headers a 429 carries: both, ``retry-after`` (seconds) or ``retry-after-ms``.
RetryAfter = Literal["both", "seconds", "ms"]


class Delivery(StrEnum):
    """How the response bytes are delivered."""

    NORMAL = "normal"
    SLOW = "slow"
    SLOW_FIRST_TOKEN = "slow_first_token"  # noqa: S105 - a scenario name, not a secret
    STALL = "stall"
    CUT = "cut"
    NO_DONE = "no_done"
    MALFORMED = "malformed"
    INBAND_ERROR = "inband_error"
    BAD_JSON = "bad_json"
    NO_RESPONSE = "no_response"
    RESET = "reset"


Body = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One behaviour of the simulator.

    Args:
        name: the value of ``--scenario`` and of the ``X-Chatcontract-Scenario`` header.
        summary: one line for ``--list-scenarios``.
        non_stream: what a non-streaming request gets.
        stream: what a streaming request gets.
        reply: a canned answer from the flavor's error table, in both modes.
        answer: rewrites the assistant's answer before any body is built.
        body: mutates a non-streaming body in place.
        chunks: mutates the list of stream chunks in place.
        delivery: how the bytes are delivered.
        default_delay_ms: the delay used when neither the header nor the server sets one.
        fault_count: only the first this-many requests get the fault (``None``: all).
        fault_window_ms: the fault lasts this long from the first request (``None``: always).
        flap_every: inside the window, every this-many-th request gets the ``ok`` answer.
        retry_after: the retry-after headers a ``reply`` carries (for ``fault_window_ms``).
        only_if: the fault applies only to requests whose messages pass this test.
    """

    name: str
    summary: str
    non_stream: str
    stream: str
    reply: Situation | None = None
    answer: Callable[[Answer], Answer] | None = None
    body: Callable[[Body], None] | None = None
    chunks: Callable[[list[Body]], None] | None = None
    delivery: Delivery = Delivery.NORMAL
    default_delay_ms: int = 0
    fault_count: int | None = None
    fault_window_ms: int | None = None
    flap_every: int | None = None
    retry_after: RetryAfter | None = None
    only_if: Callable[[Sequence[object]], bool] | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or "\n" in self.summary:
            raise ValueError(
                f"scenario {self.name!r} needs an identifier name and a one-line summary"
            )
        if self.reply is not None and (self.answer or self.body or self.chunks):
            raise ValueError(
                f"scenario {self.name!r}: a canned reply cannot also reshape a completion"
            )
        if self.retry_after is not None and self.fault_window_ms is None:
            raise ValueError(f"scenario {self.name!r}: retry-after headers need a fault window")


def faulted(scenario: Scenario, *, seen: int, elapsed_s: float | None, window_s: float) -> bool:
    """Whether the next request gets ``scenario``'s fault, from its per-server state.

    Args:
        seen: requests of this scenario (and state key) already answered.
        elapsed_s: seconds since the first of them (``None``: this is the first).
        window_s: the fault window in seconds, already scaled (read only when the scenario
            has a ``fault_window_ms``).
    """
    if scenario.fault_count is not None and seen >= scenario.fault_count:
        return False
    if scenario.fault_window_ms is None:
        return True
    if elapsed_s is not None and elapsed_s >= window_s:
        return False
    return scenario.flap_every is None or (seen + 1) % scenario.flap_every != 0


def _ends_with_assistant(messages: Sequence[object]) -> bool:
    last = messages[-1] if messages else None
    return isinstance(last, dict) and last.get("role") == "assistant"


# --- answer changes -----------------------------------------------------------------------------


def _empty_content(answer: Answer) -> Answer:
    return replace(answer, content="", pieces=(), completion_tokens=0)


def _content_filter(answer: Answer) -> Answer:
    return replace(
        answer, content=None, pieces=(), finish_reason="content_filter", completion_tokens=0
    )


def _length(answer: Answer) -> Answer:
    return answer.truncated(max(1, len(answer.pieces) // 2))


def _no_finish_reason(answer: Answer) -> Answer:
    return replace(answer, finish_reason=None)


# --- body and chunk changes ---------------------------------------------------------------------

DRIFT_FIELD = "x_chatcontract_drift"
DRIFT_USAGE_FIELD = "x_chatcontract_drift_tokens"
USAGE_MISMATCH_EXTRA = 7


def _usage_chunk(chunks: list[Body]) -> Body | None:
    return next((c for c in chunks if c.get("usage")), None)


def _body_empty_choices(body: Body) -> None:
    body["choices"] = []


def _chunks_empty_choices(chunks: list[Body]) -> None:
    for chunk in chunks:
        chunk["choices"] = []


def _body_missing_usage(body: Body) -> None:
    del body["usage"]


def _chunks_missing_usage(chunks: list[Body]) -> None:
    chunks[:] = [c for c in chunks if not c.get("usage")]
    for chunk in chunks:
        chunk.pop("usage", None)


def _body_usage_mismatch(body: Body) -> None:
    body["usage"]["total_tokens"] += USAGE_MISMATCH_EXTRA


def _chunks_usage_mismatch(chunks: list[Body]) -> None:
    usage_chunk = _usage_chunk(chunks)
    if usage_chunk is not None:
        usage_chunk["usage"]["total_tokens"] += USAGE_MISMATCH_EXTRA


def _body_wrong_types(body: Body) -> None:
    body["created"] = str(body["created"])
    body["choices"][0]["message"]["content"] = 42


def _chunks_wrong_types(chunks: list[Body]) -> None:
    for chunk in chunks:
        chunk["created"] = str(chunk["created"])
        for choice in chunk["choices"]:
            if choice["delta"].get("content"):
                choice["delta"]["content"] = 42


def _body_extra_field(body: Body) -> None:
    body[DRIFT_FIELD] = {"added_by": "chatcontract simulator"}
    body["usage"][DRIFT_USAGE_FIELD] = 0


def _chunks_extra_field(chunks: list[Body]) -> None:
    for chunk in chunks:
        chunk[DRIFT_FIELD] = {"added_by": "chatcontract simulator"}
    usage_chunk = _usage_chunk(chunks)
    if usage_chunk is not None:
        usage_chunk["usage"][DRIFT_USAGE_FIELD] = 0


def _body_missing_field(body: Body) -> None:
    del body["choices"][0]["finish_reason"]


def _chunks_missing_field(chunks: list[Body]) -> None:
    for chunk in chunks:
        for choice in chunk["choices"]:
            del choice["finish_reason"]


_TABLE: tuple[Scenario, ...] = (
    Scenario(
        name="ok",
        summary="a correct, deterministic answer (the default)",
        non_stream="200 chat.completion, shaped as CometAPI's documented example",
        stream="200 text/event-stream: role chunk, one chunk per token, finish chunk, "
        "usage chunk when stream_options.include_usage, data: [DONE]",
    ),
    Scenario(
        name="slow",
        summary="the whole answer takes the delay (default 2000 ms)",
        non_stream="waits the delay, then the normal answer",
        stream="headers at once, then the chunks spread over the delay "
        "(: PING comments in long gaps)",
        delivery=Delivery.SLOW,
        default_delay_ms=SLOW_DEFAULT_MS,
    ),
    Scenario(
        name="slow_first_token",
        summary="a long wait before the first token (default 2000 ms)",
        non_stream="waits the delay, then the normal answer",
        stream="headers and the role chunk at once, then the delay (with : PING keep-alives), "
        "then the rest",
        delivery=Delivery.SLOW_FIRST_TOKEN,
        default_delay_ms=SLOW_DEFAULT_MS,
    ),
    Scenario(
        name="stall_mid_stream",
        summary="the answer stops halfway and stays silent for the delay (default 60 s)",
        non_stream="headers and half the body, silence for the delay, then the rest",
        stream="half the chunks, silence (no keep-alive) for the delay, then the rest",
        delivery=Delivery.STALL,
        default_delay_ms=STALL_DEFAULT_MS,
    ),
    Scenario(
        name="cut_stream",
        summary="the connection closes halfway through the answer",
        non_stream="headers with the full Content-Length, half the body, "
        "then the connection closes",
        stream="half the chunks, then the connection closes (no finish_reason, no [DONE])",
        delivery=Delivery.CUT,
    ),
    Scenario(
        name="no_done",
        summary="a stream that ends without data: [DONE]",
        non_stream="the normal answer ([DONE] only exists in streams)",
        stream="every chunk including finish_reason and usage, then the body ends without [DONE]",
        delivery=Delivery.NO_DONE,
    ),
    Scenario(
        name="done_without_finish_reason",
        summary="the answer ends without any finish_reason",
        non_stream="200 with choices[0].finish_reason null",
        stream="content chunks then data: [DONE], no chunk carries a finish_reason",
        answer=_no_finish_reason,
    ),
    Scenario(
        name="malformed_chunk",
        summary="one stream event is not valid JSON",
        non_stream="as bad_json: 200 application/json with a truncated JSON body",
        stream="a data: event with truncated JSON in the middle, then the rest and [DONE]",
        delivery=Delivery.MALFORMED,
    ),
    Scenario(
        name="inband_error_chunk",
        summary='a stream that carries data: {"error": ...} after it started',
        non_stream='as error_in_200: 200 with an {"error": ...} body',
        stream='role and first content chunk, then data: {"error": ...}, then data: [DONE]',
        delivery=Delivery.INBAND_ERROR,
    ),
    Scenario(
        name="error_in_200",
        summary='HTTP 200 whose body is an {"error": ...} envelope',
        non_stream='200 application/json {"error": ...}',
        stream='200 application/json {"error": ...} (no event stream)',
        reply=Situation.ERROR_IN_200,
    ),
    Scenario(
        name="empty_choices",
        summary="a completion with choices: []",
        non_stream="200 with choices: [] (usage still present)",
        stream="every chunk with choices: [], then [DONE]",
        body=_body_empty_choices,
        chunks=_chunks_empty_choices,
    ),
    Scenario(
        name="empty_content",
        summary='the assistant says "" and stops',
        non_stream='200 with content "" and completion_tokens 0',
        stream="role chunk, finish chunk, [DONE]: no content delta",
        answer=_empty_content,
    ),
    Scenario(
        name="missing_usage",
        summary="no usage anywhere",
        non_stream="200 without the usage object",
        stream="no usage chunk even with stream_options.include_usage",
        body=_body_missing_usage,
        chunks=_chunks_missing_usage,
    ),
    Scenario(
        name="usage_mismatch",
        summary="usage.total_tokens != prompt_tokens + completion_tokens",
        non_stream=f"200 with total_tokens {USAGE_MISMATCH_EXTRA} more than the sum",
        stream="the usage chunk's total is off (visible with stream_options.include_usage)",
        body=_body_usage_mismatch,
        chunks=_chunks_usage_mismatch,
    ),
    Scenario(
        name="wrong_types",
        summary="created is a string and content a number",
        non_stream='200 with "created": "<digits>" and message.content 42',
        stream='every chunk with "created": "<digits>", content deltas 42',
        body=_body_wrong_types,
        chunks=_chunks_wrong_types,
    ),
    Scenario(
        name="drift_extra_field",
        summary="an unknown top-level field and an unknown usage field appear",
        non_stream=f"200 with {DRIFT_FIELD} at the top level and usage.{DRIFT_USAGE_FIELD}",
        stream=f"every chunk with {DRIFT_FIELD}; the usage chunk with usage.{DRIFT_USAGE_FIELD}",
        body=_body_extra_field,
        chunks=_chunks_extra_field,
    ),
    Scenario(
        name="drift_missing_field",
        summary="choices[0].finish_reason disappears from the shape",
        non_stream="200 whose choice has no finish_reason key at all",
        stream="no chunk's choice has a finish_reason key",
        body=_body_missing_field,
        chunks=_chunks_missing_field,
    ),
    Scenario(
        name="content_filter",
        summary="the answer is filtered: finish_reason content_filter, no content",
        non_stream="200 with content null, finish_reason content_filter, completion_tokens 0",
        stream="role chunk, then a chunk with finish_reason content_filter, [DONE]",
        answer=_content_filter,
    ),
    Scenario(
        name="length",
        summary="the answer is cut at half its tokens: finish_reason length",
        non_stream="200 with half the content and finish_reason length",
        stream="half the content chunks, finish_reason length",
        answer=_length,
    ),
    Scenario(
        name="rate_limit",
        summary="429 rate limited (cometapi: empty body; openai: retry-after and x-ratelimit-*)",
        non_stream="429 as the flavor sends it",
        stream="the same 429 (no event stream)",
        reply=Situation.RATE_LIMIT,
    ),
    Scenario(
        name="quota_exhausted",
        summary="out of credit "
        "(cometapi: 403 insufficient_user_quota; openai: 429 insufficient_quota)",
        non_stream="the flavor's quota error",
        stream="the same error (no event stream)",
        reply=Situation.QUOTA,
    ),
    Scenario(
        name="server_error",
        summary="500 from the gateway (cometapi: do_request_failed; openai: server_error)",
        non_stream="500 JSON error",
        stream="the same 500 (no event stream)",
        reply=Situation.SERVER_ERROR,
    ),
    Scenario(
        name="upstream_unavailable",
        summary="503 that is not about the model (cometapi: upstream bad_response_status_code)",
        non_stream="503 JSON error",
        stream="the same 503 (no event stream)",
        reply=Situation.UPSTREAM_UNAVAILABLE,
    ),
    Scenario(
        name="gateway_timeout",
        summary="504 HTML page from the reverse proxy",
        non_stream="504 text/html nginx page",
        stream="the same 504 (no event stream)",
        reply=Situation.GATEWAY_TIMEOUT,
    ),
    Scenario(
        name="cloudflare_524",
        summary="524 Cloudflare 'A timeout occurred' HTML page",
        non_stream="524 text/html Cloudflare page",
        stream="the same 524 (no event stream)",
        reply=Situation.CLOUDFLARE_524,
    ),
    Scenario(
        name="html_error",
        summary="502 HTML page instead of JSON",
        non_stream="502 text/html nginx page",
        stream="the same 502 (no event stream)",
        reply=Situation.HTML_ERROR,
    ),
    Scenario(
        name="bad_json",
        summary="200 application/json whose body is not valid JSON",
        non_stream="200 application/json, a truncated JSON document",
        stream="the same (no event stream); see malformed_chunk for a broken event",
        delivery=Delivery.BAD_JSON,
    ),
    Scenario(
        name="no_response",
        summary="accepts the request and never answers (held up to the delay, default 10 min)",
        non_stream="no bytes until the hold ends or the server stops, then the connection closes",
        stream="the same: no headers, no events",
        delivery=Delivery.NO_RESPONSE,
        default_delay_ms=HOLD_DEFAULT_MS,
    ),
    Scenario(
        name="reset",
        summary="closes the connection without any HTTP response",
        non_stream="the connection closes before a status line is sent",
        stream="the same",
        delivery=Delivery.RESET,
    ),
    # --- recovery: faults that pass, refusals that decide the next route ------------------------
    Scenario(
        name="reset_once",
        summary="the first request's connection closes before any byte; then ok",
        non_stream="the first request: no status line; later ones: the normal answer",
        stream="the same",
        delivery=Delivery.RESET,
        fault_count=1,
    ),
    Scenario(
        name="server_error_once",
        summary="500 on the first request, then ok",
        non_stream="the first request: the flavor's 500; later ones: the normal answer",
        stream="the same",
        reply=Situation.SERVER_ERROR,
        fault_count=1,
    ),
    Scenario(
        name="rate_limit_once",
        summary="429 without retry-after on the first request, then ok",
        non_stream="the first request: the flavor's 429 (no retry-after); later ones: ok",
        stream="the same",
        reply=Situation.RATE_LIMIT,
        fault_count=1,
    ),
    Scenario(
        name="rate_limit_retry_after",
        summary=f"429 with retry-after and retry-after-ms ({RETRY_AFTER_MS} ms) until the window "
        "ends, then ok",
        non_stream="429 with retry-after: 1 and retry-after-ms: 1000 (scaled) for every request "
        "inside the window that starts with the first; ok after it",
        stream="the same",
        reply=Situation.RATE_LIMIT,
        fault_window_ms=RETRY_AFTER_MS,
        retry_after="both",
    ),
    Scenario(
        name="rate_limit_retry_after_ms",
        summary=f"429 with only retry-after-ms ({RETRY_AFTER_MS} ms) until the window ends, "
        "then ok",
        non_stream="as rate_limit_retry_after, with retry-after-ms only",
        stream="the same",
        reply=Situation.RATE_LIMIT,
        fault_window_ms=RETRY_AFTER_MS,
        retry_after="ms",
    ),
    Scenario(
        name="late_first_token",
        summary=f"the first token comes {LATE_FIRST_TOKEN_MS // 1000} s late (the delay)",
        non_stream="waits the delay, then the normal answer",
        stream="headers and the role chunk at once, then the delay (with : PING keep-alives), "
        "then the rest",
        delivery=Delivery.SLOW_FIRST_TOKEN,
        default_delay_ms=LATE_FIRST_TOKEN_MS,
    ),
    Scenario(
        name="context_length",
        summary="400 context_length_exceeded: the prompt is too long for this model",
        non_stream="400 with OpenAI's 'maximum context length' error (new-api: request id added)",
        stream="the same 400 (no event stream)",
        reply=Situation.CONTEXT_LENGTH,
    ),
    Scenario(
        name="content_policy",
        summary="400 content_policy_violation: the provider refuses on policy grounds",
        non_stream="400 with OpenAI's safety-system refusal",
        stream="the same 400 (no event stream)",
        reply=Situation.CONTENT_POLICY,
    ),
    Scenario(
        name="refuses_assistant_prefix",
        summary="400 for a request ending with an assistant message (no prefix continuation)",
        non_stream="a trailing assistant message: 400 'prefill is not supported'; else ok",
        stream="the same",
        reply=Situation.PREFIX_REFUSED,
        only_if=_ends_with_assistant,
    ),
    Scenario(
        name="flapping_outage",
        summary=f"a {OUTAGE_MS // 1000} s outage from the first request: 503, every "
        f"{FLAP_EVERY}th request gets through",
        non_stream="the flavor's 503 inside the window (the delay if given), ok after it",
        stream="the same",
        reply=Situation.UPSTREAM_UNAVAILABLE,
        fault_window_ms=OUTAGE_MS,
        flap_every=FLAP_EVERY,
    ),
)

SCENARIOS: Mapping[str, Scenario] = {scenario.name: scenario for scenario in _TABLE}
SCENARIO_NAMES: tuple[str, ...] = tuple(SCENARIOS)
