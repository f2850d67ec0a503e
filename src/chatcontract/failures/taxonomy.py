"""The failure taxonomy as tables: kinds, categories, who acts on each, and what to retry.

``kind`` says where it failed; ``category`` says what it means. Each category maps to an owner
with a first action (from the seed runbooks) and to its retry ``Rule``: the one retry table.
``RULES`` is that table keyed for the policy (a few ``"kind:category"`` rows where *where* it
failed matters); ``decision_for`` reads the same rows as the taxonomy's one word (``retry``,
``fallback``, ``none``), and ``chatcontract.policy.decide`` turns them into a ``Decision``
with waits and the deadline. The contract's ``errors.retryable`` / ``errors.non_retryable``
sets adjust a row (``rule_of``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from chatcontract.contract.model import CATEGORIES

__all__ = [
    "ALL_ATTEMPTS",
    "CATEGORIES",
    "CATEGORY_TABLE",
    "KINDS",
    "OWNERS",
    "RULES",
    "SILENT_CODES",
    "CategoryInfo",
    "Kind",
    "RetryDecision",
    "Rule",
    "decision_for",
    "rule_of",
]

Kind = Literal["transport", "http", "api_error", "parser", "semantic", "budget"]
#: The taxonomy's one word for what a failure calls for (``none``: raise to the caller).
RetryDecision = Literal["retry", "fallback", "none"]
Wait = Literal["none", "backoff", "retry_after"]
Then = Literal["fallback", "raise"]

#: ``Rule.retries`` value meaning "as many as ``policy.retry.max_attempts`` allows".
ALL_ATTEMPTS = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """What to do after a failure of one class: same-route retries, the wait before one, and
    what happens once no (more) retry is taken."""

    retries: int  # same-route retries allowed (ALL_ATTEMPTS: up to max_attempts - 1)
    wait: Wait = "none"  # how long before a retry
    then: Then = "fallback"  # once no (more) retry is taken

    def __post_init__(self) -> None:
        if self.retries < ALL_ATTEMPTS:
            raise ValueError(f"Rule.retries must be >= 0 or ALL_ATTEMPTS, got {self.retries}")

    @property
    def decision(self) -> RetryDecision:
        """The row in one word: ``retry`` if it retries at all, else where it goes next."""
        if self.retries != 0:
            return "retry"
        return "fallback" if self.then == "fallback" else "none"


_RAISE = Rule(retries=0, then="raise")
_FALLBACK = Rule(retries=0, then="fallback")
_ONE_BACKOFF = Rule(retries=1, wait="backoff", then="fallback")
_ONE_NOW = Rule(retries=1, wait="none", then="fallback")
_RATE_LIMITED = Rule(retries=ALL_ATTEMPTS, wait="retry_after", then="fallback")

#: Where a failure happened, from the wire outwards.
KINDS: tuple[Kind, ...] = ("transport", "http", "api_error", "parser", "semantic", "budget")

#: Who acts.
OWNERS: tuple[str, ...] = ("secrets", "application", "capacity", "sre", "contract")


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoryInfo:
    """Owner, first action and retry rule of one failure category."""

    owner: str
    action: str
    rule: Rule

    @property
    def decision(self) -> RetryDecision:
        """The default retry decision (the rule in one word)."""
        return self.rule.decision


CATEGORY_TABLE: dict[str, CategoryInfo] = {
    "auth": CategoryInfo(
        owner="secrets",
        action="check token rotation, environment variables and gateway header injection",
        rule=_RAISE,
    ),
    "validation": CategoryInfo(
        owner="application",
        action="fix the request builder: a required field is missing or has the wrong type; "
        "retrying repeats the mistake",
        rule=_RAISE,
    ),
    "model": CategoryInfo(
        owner="application",
        action="check the configured model name ($CHATCONTRACT_MODEL or the contract) against "
        "the provider's model list",
        rule=_RAISE,
    ),
    "rate_limit": CategoryInfo(
        owner="capacity",
        action="back off with jitter, honour retry-after; compare traffic with the provider's "
        "limits and spread the load",
        rule=_RATE_LIMITED,
    ),
    "quota": CategoryInfo(
        owner="capacity",
        action="top up the balance or raise the key's quota; traffic goes to the fallback route",
        rule=_FALLBACK,
    ),
    "upstream": CategoryInfo(
        owner="sre",
        action="provider or gateway failure: retry with backoff, check the provider status page",
        rule=_ONE_BACKOFF,
    ),
    "timeout": CategoryInfo(
        owner="sre",
        action="check provider latency against the timeout budget; stream long generations",
        rule=_ONE_BACKOFF,
    ),
    "network": CategoryInfo(
        owner="sre",
        action="check DNS, egress firewall, proxy and TLS settings towards the provider",
        rule=_ONE_BACKOFF,
    ),
    "endpoint": CategoryInfo(
        owner="contract",
        action="check endpoint.base_url and endpoint.path in the contract against the reference",
        rule=_RAISE,
    ),
    "contract": CategoryInfo(
        owner="contract",
        action="the response broke a consumed path or the stream framing: compare with the "
        "accepted baseline, then fix the parser or the contract",
        rule=_FALLBACK,
    ),
    "content": CategoryInfo(
        owner="application",
        action="empty or filtered content: inspect finish_reason, the prompt and max_tokens",
        rule=_FALLBACK,
    ),
    "usage": CategoryInfo(
        owner="contract",
        action="usage is missing or inconsistent: do not bill from it; raise it with the provider",
        rule=_FALLBACK,
    ),
    "budget": CategoryInfo(
        owner="application",
        action="a local cap refused the call before sending: raise policy.caps or shrink the "
        "request",
        rule=_RAISE,
    ),
    "context_length": CategoryInfo(
        owner="application",
        action="the request is too large for this route's context window: shorten the "
        "conversation or max_tokens, or add a fallback route with a larger context_window",
        rule=_FALLBACK,
    ),
    "content_policy": CategoryInfo(
        owner="application",
        action="the provider refused the request on policy grounds: review the prompt; "
        "retrying repeats the refusal (policy.content_policy_fallback opts into a fallback)",
        rule=_RAISE,
    ),
}

if set(CATEGORY_TABLE) != set(CATEGORIES):  # pragma: no cover - import-time consistency guard
    raise RuntimeError("CATEGORY_TABLE must cover exactly the contract's CATEGORIES")


#: The retry table keyed for the policy: ``"kind:category"`` rows where *where* it failed
#: matters (a connection that timed out or broke is retried at once), then one per category.
#: Failure codes of a route that stayed silent: no response byte within ``first_byte_ms``
#: (``read_timeout``, ``first_byte_timeout``), no content token within ``first_token_ms``
#: (``first_token_timeout``), or no data event within ``idle_ms`` (``stream_stalled``). A
#: silent route is not retried: waiting for it again is how a fallback that could answer in
#: 10 s starts after 60 s.
SILENT_CODES: tuple[str, ...] = (
    "read_timeout",
    "first_byte_timeout",
    "first_token_timeout",
    "stream_stalled",
)

RULES: Mapping[str, Rule] = {
    **{f"transport:timeout:{code}": _FALLBACK for code in SILENT_CODES},
    "transport:timeout": _ONE_NOW,
    "transport:network": _ONE_NOW,
    **{category: info.rule for category, info in CATEGORY_TABLE.items()},
}


def rule_of(
    category: str,
    *,
    kind: str | None = None,
    code: str | None = None,
    retryable: tuple[str, ...] = (),
    non_retryable: tuple[str, ...] = (),
) -> Rule:
    """The ``RULES`` row for a failure (``kind:category:code``, then ``kind:category``, then
    ``category``), adjusted by the contract's sets.

    A category the contract lists as non-retryable gets no same-route retry; one it lists as
    retryable but whose category row does not retry gets retries up to ``max_attempts``,
    waiting what the server's ``retry-after`` asks (capped) or else the backoff. Promotion
    concerns the category's own row: a code-level row that says "no retry" (a silent route)
    stays so even though its category (``timeout``) is listed as retryable.
    """
    rule = (
        (RULES.get(f"{kind}:{category}:{code}") if kind and code else None)
        or (RULES.get(f"{kind}:{category}") if kind else None)
        or RULES[category]
    )
    if category in non_retryable:
        return replace(rule, retries=0)
    if category in retryable and RULES[category].retries == 0:
        return replace(rule, retries=ALL_ATTEMPTS, wait="retry_after")
    return rule


def decision_for(
    category: str,
    *,
    retryable: tuple[str, ...] = (),
    non_retryable: tuple[str, ...] = (),
    kind: str | None = None,
) -> RetryDecision:
    """The retry decision for ``category`` (and ``kind``), adjusted by the contract's sets:
    the ``rule_of`` row in one word.

    A category the contract lists as retryable is retried; one it lists as non-retryable is
    never retried on the same route (a default ``retry`` becomes ``fallback``).
    """
    return rule_of(category, kind=kind, retryable=retryable, non_retryable=non_retryable).decision
