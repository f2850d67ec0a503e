"""Which target a stored row or a run record came from: the simulator, or a real endpoint.

Every probe row, validation run, drift event, cost entry, ``last-validate.json`` and baseline
carries a :class:`TargetIdentity`, so simulated runs and real runs never mix: the page, drift,
cost and baseline of a real target read only that target's rows.

The identity is the base URL without credentials, query or fragment, plus the model; every
simulated run is ``simulated`` plus the model (the simulator's port changes every run, so it is
not part of the identity). Rows written before targets were recorded have no identity
(:data:`UNKNOWN_TARGET`) and match no target.

Example::

    identity = identity_of(target)
    identity.key          # 'https://api.cometapi.com/v1 model=gpt-4.1-nano'
    TargetIdentity.simulated_for("gpt-4.1-nano").key   # 'simulated model=gpt-4.1-nano'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from chatcontract.redact import redact_text

__all__ = ["SIMULATED", "UNKNOWN_TARGET", "TargetIdentity", "clean_base_url", "identity_of"]

#: The base URL part of every simulated identity.
SIMULATED = "simulated"
#: How rows and records without an identity (written by an older chatcontract) are shown.
UNKNOWN_TARGET = "unknown target"


class _TargetLike(Protocol):
    @property
    def base_url(self) -> str: ...

    @property
    def simulated(self) -> bool: ...

    @property
    def model(self) -> str: ...


def clean_base_url(url: str) -> str:
    """``url`` without credentials, query or fragment, scheme and host lower-cased.

    A URL that cannot be parsed is returned redacted and without its query (it still
    identifies the target; it never shows a credential).
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return redact_text(text.split("?", 1)[0].split("#", 1)[0].rstrip("/"))
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    cleaned = urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
    return redact_text(cleaned)


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetIdentity:
    """A target as stored: ``simulated``, or a real base URL (no credentials) and a model."""

    simulated: bool
    base_url: str
    model: str

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("a target identity needs a model")
        if not self.simulated and not self.base_url:
            raise ValueError("a real target identity needs a base URL")

    @classmethod
    def simulated_for(cls, model: str) -> TargetIdentity:
        return cls(simulated=True, base_url=SIMULATED, model=model)

    @classmethod
    def real(cls, base_url: str, model: str) -> TargetIdentity:
        return cls(simulated=False, base_url=clean_base_url(base_url), model=model)

    @property
    def key(self) -> str:
        """The stored form: ``<base URL> model=<model>`` or ``simulated model=<model>``."""
        return f"{SIMULATED if self.simulated else self.base_url} model={self.model}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "simulated": self.simulated,
            "base_url": None if self.simulated else self.base_url,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Any) -> TargetIdentity | None:
        """The identity in a record's ``target`` object, or None when absent or unusable.

        Accepts the form of :meth:`to_dict` and the ``target`` object of a validate report
        (``base_url``, ``simulated``, ``model``).
        """
        if not isinstance(data, Mapping):
            return None
        simulated, model, base_url = data.get("simulated"), data.get("model"), data.get("base_url")
        if not isinstance(simulated, bool) or not isinstance(model, str) or not model:
            return None
        if simulated:
            return cls.simulated_for(model)
        if not isinstance(base_url, str) or not base_url:
            return None
        return cls.real(base_url, model)

    def __str__(self) -> str:
        return self.key


def identity_of(target: _TargetLike) -> TargetIdentity:
    """The identity of a resolved target (``chatcontract.target.Target`` or alike)."""
    if target.simulated:
        return TargetIdentity.simulated_for(target.model)
    return TargetIdentity.real(target.base_url, target.model)
