"""The failure taxonomy as tables: kinds, categories, and who acts on each category.

``kind`` says where it failed; ``category`` says what it means. Each category maps to an owner
with a first action (from the seed runbooks) and to a default retry decision. The contract's
``errors.retryable`` / ``errors.non_retryable`` sets adjust the decision (``decision_for``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chatcontract.contract.model import CATEGORIES

__all__ = [
    "CATEGORIES",
    "CATEGORY_TABLE",
    "KINDS",
    "OWNERS",
    "CategoryInfo",
    "Decision",
    "Kind",
    "decision_for",
]

Kind = Literal["transport", "http", "api_error", "parser", "semantic", "budget"]
Decision = Literal["retry", "fallback", "none"]

#: Where a failure happened, from the wire outwards.
KINDS: tuple[Kind, ...] = ("transport", "http", "api_error", "parser", "semantic", "budget")

#: Who acts.
OWNERS: tuple[str, ...] = ("secrets", "application", "capacity", "sre", "contract")


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoryInfo:
    """Owner, first action and default retry decision of one failure category."""

    owner: str
    action: str
    decision: Decision


CATEGORY_TABLE: dict[str, CategoryInfo] = {
    "auth": CategoryInfo(
        owner="secrets",
        action="check token rotation, environment variables and gateway header injection",
        decision="none",
    ),
    "validation": CategoryInfo(
        owner="application",
        action="fix the request builder: a required field is missing or has the wrong type; "
        "retrying repeats the mistake",
        decision="none",
    ),
    "model": CategoryInfo(
        owner="application",
        action="check the configured model name ($CHATCONTRACT_MODEL or the contract) against "
        "the provider's model list",
        decision="none",
    ),
    "rate_limit": CategoryInfo(
        owner="capacity",
        action="back off with jitter, honour retry-after; compare traffic with the provider's "
        "limits and spread the load",
        decision="retry",
    ),
    "quota": CategoryInfo(
        owner="capacity",
        action="top up the balance or raise the key's quota; traffic goes to the fallback route",
        decision="fallback",
    ),
    "upstream": CategoryInfo(
        owner="sre",
        action="provider or gateway failure: retry with backoff, check the provider status page",
        decision="retry",
    ),
    "timeout": CategoryInfo(
        owner="sre",
        action="check provider latency against the timeout budget; stream long generations",
        decision="retry",
    ),
    "network": CategoryInfo(
        owner="sre",
        action="check DNS, egress firewall, proxy and TLS settings towards the provider",
        decision="retry",
    ),
    "endpoint": CategoryInfo(
        owner="contract",
        action="check endpoint.base_url and endpoint.path in the contract against the reference",
        decision="none",
    ),
    "contract": CategoryInfo(
        owner="contract",
        action="the response broke a consumed path or the stream framing: compare with the "
        "accepted baseline, then fix the parser or the contract",
        decision="fallback",
    ),
    "content": CategoryInfo(
        owner="application",
        action="empty or filtered content: inspect finish_reason, the prompt and max_tokens",
        decision="fallback",
    ),
    "usage": CategoryInfo(
        owner="contract",
        action="usage is missing or inconsistent: do not bill from it; raise it with the provider",
        decision="fallback",
    ),
    "budget": CategoryInfo(
        owner="application",
        action="a local cap refused the call before sending: raise policy.caps or shrink the "
        "request",
        decision="none",
    ),
    "context_length": CategoryInfo(
        owner="application",
        action="the request is too large for this route's context window: shorten the "
        "conversation or max_tokens, or add a fallback route with a larger context_window",
        decision="fallback",
    ),
    "content_policy": CategoryInfo(
        owner="application",
        action="the provider refused the request on policy grounds: review the prompt; "
        "retrying repeats the refusal (policy.content_policy_fallback opts into a fallback)",
        decision="none",
    ),
}

if set(CATEGORY_TABLE) != set(CATEGORIES):  # pragma: no cover - import-time consistency guard
    raise RuntimeError("CATEGORY_TABLE must cover exactly the contract's CATEGORIES")


def decision_for(
    category: str, *, retryable: tuple[str, ...] = (), non_retryable: tuple[str, ...] = ()
) -> Decision:
    """The retry decision for ``category``, adjusted by the contract's sets.

    A category the contract lists as retryable is retried; one it lists as non-retryable is
    never retried on the same route (a default ``retry`` becomes ``fallback``).
    """
    default = CATEGORY_TABLE[category].decision
    if category in retryable:
        return "retry"
    if category in non_retryable and default == "retry":
        return "fallback"
    return default
