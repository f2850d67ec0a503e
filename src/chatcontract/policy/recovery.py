"""Stream recovery and run-time completeness: pure decisions on what a caller already has.

**Recovery.** A stream that breaks after deltas reached the caller (cut, stall, malformed
event, in-band error, early close) can still end in the complete answer. ``recover_stream``
decides, from what was delivered, the failure and the next route's ``continuation`` mode:

=====================================  ============================================
situation                              action
=====================================  ============================================
nothing delivered yet                  ``restart`` (seamless: the caller saw nothing)
the failure is the request's fault     ``raise`` (another attempt repeats it)
  (``UNRECOVERABLE``)
text delivered, no tool call, the      ``continue``: ask the rest with the partial
  route continues (not ``none``), the    answer as an assistant prefix
  continuation was not refused
the caller accepts restarts            ``restart``: the next attempt answers from the
  (``on_restart`` given, or it reads     start, the caller is told before its first
  events)                                delta
otherwise                              ``raise`` (``StreamInterrupted`` with the
                                         partial content)
=====================================  ============================================

A partly streamed tool call is never continued (its arguments cannot be spliced). A refused
continuation (``continuation_refused``) goes on down the table; the original failure stays
the one reported (``Recovery.failure``).

**Completeness.** At run time an answer is complete when a ``finish_reason`` was seen and
it is usable (text or a tool call). A missing ``[DONE]``, missing or inconsistent usage and
usage over ``max_tokens`` are then recorded as contract violations (``TOLERATED_CODES``), not
failures; an empty or filtered answer is not complete and still fails over.
``validate`` and the probes stay strict: they fail every such clause.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chatcontract.contract.model import Continuation
from chatcontract.failures import Failure

__all__ = [
    "TOLERATED_CODES",
    "UNRECOVERABLE",
    "Recovery",
    "RecoveryAction",
    "continuation_request",
    "is_complete",
    "recover_stream",
    "tolerated",
]

RecoveryAction = Literal["continue", "restart", "raise"]

#: Failure categories that say the request itself is refused: no other attempt helps.
UNRECOVERABLE = frozenset({"auth", "validation", "model", "endpoint", "budget", "content_policy"})

#: Failure codes that, on an answer whose ``finish_reason`` was seen, are recorded as
#: contract violations at run time (the call succeeds): "complete but not as contracted".
TOLERATED_CODES = frozenset(
    {
        "stream_no_done",
        "missing_usage",
        "usage_mismatch",
        "negative_usage",
        "usage_exceeds_max_tokens",
        "data_after_done",
        "stream_content_type",
    }
)


#: What each continuation mode adds to the request besides the trailing assistant message
#: (``none`` is absent: that route does not continue).
_CONTINUATION_FLAGS: Mapping[str, Mapping[str, Any]] = {
    "assistant_prefix": {},
    "continue_final_message": {"continue_final_message": True, "add_generation_prompt": False},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovery:
    """What to do after a stream broke mid-answer.

    ``body`` is the continuation request (set exactly for ``continue``); ``failure`` is the
    original failure, the one reported whatever happens next; ``reason`` is one line.
    """

    action: RecoveryAction
    reason: str
    failure: Failure
    body: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if (self.action == "continue") != (self.body is not None):
            raise ValueError("Recovery.body is set exactly when action is 'continue'")


def continuation_request(
    request: Mapping[str, Any], partial: str, mode: Continuation
) -> dict[str, Any]:
    """The request that asks a route for the rest of an answer that begins with ``partial``.

    ``assistant_prefix`` appends ``{"role": "assistant", "content": partial}`` to the
    messages; ``continue_final_message`` does the same and sets ``continue_final_message:
    true`` and ``add_generation_prompt: false`` (vLLM's chat template needs both). The
    original request is not modified.

    Raises:
        ValueError: ``mode`` is ``none`` (the route does not continue) or unknown, or
            ``partial`` is empty.
    """
    flags = _CONTINUATION_FLAGS.get(mode)
    if flags is None:
        raise ValueError(
            f"a continuation needs assistant_prefix or continue_final_message, got {mode!r}"
        )
    if not partial:
        raise ValueError("a continuation needs the partial answer it continues")
    body = {key: copy.deepcopy(value) for key, value in request.items()}
    messages = list(body.get("messages") or ())
    messages.append({"role": "assistant", "content": partial})
    body["messages"] = messages
    body.update(flags)
    return body


def recover_stream(
    *,
    failure: Failure,
    delivered: str,
    tool_call_started: bool,
    continuation: Continuation,
    accepts_restart: bool,
    request: Mapping[str, Any],
    continuation_refused: bool = False,
) -> Recovery:
    """Continue, restart or raise after a stream broke (see the module's table).

    Args:
        failure: why the stream broke (cut, stall, malformed event, in-band error, ...).
        delivered: the text already handed to the caller.
        tool_call_started: a tool call's deltas already reached the caller.
        continuation: the continuation mode of the route that would serve the rest.
        accepts_restart: the caller said it can take a restart (``on_restart``, events).
        request: the original request body (for the continuation request).
        continuation_refused: a continuation was already tried and refused.
    """
    label = f"{failure.kind}/{failure.category}/{failure.code}"
    if not delivered and not tool_call_started:
        return Recovery(
            action="restart",
            reason=f"{label}: nothing was delivered yet, a new attempt is seamless",
            failure=failure,
        )
    if failure.category in UNRECOVERABLE:
        return Recovery(
            action="raise",
            reason=f"{label}: the request itself is refused; another attempt repeats it",
            failure=failure,
        )
    why_not = _why_not_continue(delivered, tool_call_started, continuation, continuation_refused)
    if why_not is None:
        return Recovery(
            action="continue",
            reason=f"{label}: continue after {len(delivered)} characters ({continuation})",
            failure=failure,
            body=continuation_request(request, delivered, continuation),
        )
    if accepts_restart:
        return Recovery(
            action="restart",
            reason=f"{label}: {why_not}; restart, the caller accepts restarts",
            failure=failure,
        )
    return Recovery(
        action="raise",
        reason=f"{label}: {why_not} and the caller takes no restart",
        failure=failure,
    )


def _why_not_continue(
    delivered: str, tool_call_started: bool, continuation: Continuation, refused: bool
) -> str | None:
    if tool_call_started:
        return "a partly streamed tool call is not continued"
    if not delivered:
        return "no text to continue from"
    if continuation not in _CONTINUATION_FLAGS:
        return "the route declares no continuation"
    if refused:
        return "the continuation was refused"
    return None


def is_complete(*, finish_reason: str | None, content: str | None, tool_calls: bool) -> bool:
    """Whether an answer is complete at run time: a ``finish_reason`` was seen and the answer
    is usable (non-empty text or a tool call). An empty or filtered answer is not complete."""
    if finish_reason is None:
        return False
    return bool(content) or tool_calls


def tolerated(
    failure: Failure, *, finish_reason: str | None, content: str | None, tool_calls: bool
) -> bool:
    """Whether ``failure`` is recorded as a violation at run time instead of failing the call.

    True when the answer is complete (``is_complete``) and the failure is one of
    ``TOLERATED_CODES``: the caller has the whole answer, only the framing or the
    accounting is off (budgets then fall back to an estimate).
    """
    return failure.code in TOLERATED_CODES and is_complete(
        finish_reason=finish_reason, content=content, tool_calls=tool_calls
    )
