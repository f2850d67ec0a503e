"""The simulator's model catalogue: which models exist and which snapshot name each answers with.

Real OpenAI upstreams answer an alias with a dated snapshot (``gpt-4.1-nano`` comes back as
``gpt-4.1-nano-2025-04-14``, research/cometapi.md §4a), and CometAPI passes that through. Models
without a known snapshot (and the snapshot names themselves) are echoed as sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson

__all__ = [
    "COMETAPI_MODELS",
    "OPENAI_MODELS",
    "Catalogue",
    "ModelInfo",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """One model the simulator serves.

    Args:
        id: the name a client sends (``gpt-4o-mini``).
        snapshot: the name the response carries; defaults to ``id``.
        owned_by: the ``owned_by`` field of ``GET /v1/models``.
        created: the ``created`` field of ``GET /v1/models`` (unix seconds).
    """

    id: str
    snapshot: str = ""
    owned_by: str = "openai"
    created: int = 1_700_000_000
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.id or self.id != self.id.strip():
            raise ValueError(f"model id must be a non-empty name without spaces, got {self.id!r}")
        if not self.snapshot:
            object.__setattr__(self, "snapshot", self.id)
        digest = hashlib.blake2b(self.snapshot.encode(), digest_size=5).hexdigest()
        object.__setattr__(self, "fingerprint", f"fp_{digest}")


class Catalogue:
    """The models one simulator flavor knows, with the ``/v1/models`` body precomputed.

    Both an alias and its snapshot name are accepted; the response names the snapshot.
    """

    __slots__ = ("_by_name", "models", "models_body")

    def __init__(self, models: Iterable[ModelInfo]) -> None:
        self.models: tuple[ModelInfo, ...] = tuple(models)
        by_name: dict[str, ModelInfo] = {}
        for model in self.models:
            by_name[model.id] = model
            by_name.setdefault(model.snapshot, model)
        self._by_name: Mapping[str, ModelInfo] = by_name
        self.models_body: bytes = orjson.dumps(
            {
                "object": "list",
                "data": [
                    {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}
                    for m in self.models
                ],
            }
        )

    def get(self, name: str) -> ModelInfo | None:
        """The model a request names, or ``None`` when the simulator does not serve it."""
        return self._by_name.get(name)

    def response_model(self, name: str) -> str:
        """The ``model`` field a response carries for a request naming ``name``."""
        model = self._by_name.get(name)
        if model is None or name == model.snapshot:
            return name
        return model.snapshot

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._by_name

    def __repr__(self) -> str:
        return f"Catalogue({[m.id for m in self.models]!r})"


# OpenAI models with the snapshot each alias resolves to, as observed through CometAPI and OpenAI.
_OPENAI = (
    ModelInfo(id="gpt-4.1-nano", snapshot="gpt-4.1-nano-2025-04-14", created=1744321025),
    ModelInfo(id="gpt-4.1-mini", snapshot="gpt-4.1-mini-2025-04-14", created=1744318173),
    ModelInfo(id="gpt-4.1", snapshot="gpt-4.1-2025-04-14", created=1744316542),
    ModelInfo(id="gpt-4o-mini", snapshot="gpt-4o-mini-2024-07-18", created=1721172741),
    ModelInfo(id="gpt-4o", snapshot="gpt-4o-2024-08-06", created=1715367049),
    ModelInfo(id="gpt-5-nano", snapshot="gpt-5-nano-2025-08-07", created=1754426384),
    ModelInfo(id="gpt-5-mini", snapshot="gpt-5-mini-2025-08-07", created=1754425928),
    ModelInfo(id="gpt-5", snapshot="gpt-5-2025-08-07", created=1754425777),
)

# CometAPI also routes other vendors' models through the same endpoint; they echo as sent.
_COMETAPI_EXTRA = (
    ModelInfo(id="claude-haiku-4-5-20251001", owned_by="anthropic", created=1760486400),
    ModelInfo(id="claude-sonnet-4-5-20250929", owned_by="anthropic", created=1759104000),
    ModelInfo(id="gemini-2.5-flash", owned_by="google", created=1750118400),
    ModelInfo(id="deepseek-chat", owned_by="deepseek", created=1735689600),
)

OPENAI_MODELS = Catalogue(_OPENAI)
COMETAPI_MODELS = Catalogue(_OPENAI + _COMETAPI_EXTRA)
