"""The baseline file: an accepted observation, where and when it was accepted."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatcontract._jsonfile import read_json_file
from chatcontract.errors import ConfigError
from chatcontract.identity import TargetIdentity

from .observation import MADE_UP_MODELS, Observation

DEFAULT_BASELINE_PATH = "chatcontract.baseline.json"
#: The value of the ``chatcontract_baseline`` key: the file format version.
BASELINE_FORMAT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """An accepted :class:`Observation` with where, when and from which run it was accepted.

    ``target`` is the endpoint the observation came from (None: accepted by an older
    chatcontract), ``verdict`` the accepted run's (``pass``/``fail``; None when unknown) and
    ``forced`` whether ``--force`` overrode a refusal (a failed or simulated run).
    """

    observation: Observation
    source: str
    accepted_at: str
    contract_name: str | None = None
    provider: str | None = None
    target: TargetIdentity | None = None
    verdict: str | None = None
    forced: bool = False

    @classmethod
    def accept(
        cls,
        observation: Observation,
        *,
        source: str,
        contract_name: str | None = None,
        provider: str | None = None,
        target: TargetIdentity | None = None,
        verdict: str | None = None,
        forced: bool = False,
        now: dt.datetime | None = None,
    ) -> Baseline:
        """A baseline accepting ``observation`` now (never with a made-up model name)."""
        when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        return cls(
            observation=observation.without_models(MADE_UP_MODELS),
            source=source,
            accepted_at=when.isoformat(timespec="seconds"),
            contract_name=contract_name,
            provider=provider,
            target=target,
            verdict=verdict,
            forced=forced,
        )

    @property
    def digest(self) -> str:
        """Identifies the accepted shapes (drift events are deduplicated per baseline)."""
        return self.observation.digest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "chatcontract_baseline": BASELINE_FORMAT,
            "accepted_at": self.accepted_at,
            "source": self.source,
            "contract": {"name": self.contract_name, "provider": self.provider},
            "target": None if self.target is None else self.target.to_dict(),
            "verdict": self.verdict,
            "forced": self.forced,
            "digest": self.digest,
            "observed": self.observation.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "baseline") -> Baseline:
        if not isinstance(data, Mapping) or data.get("chatcontract_baseline") != BASELINE_FORMAT:
            raise ConfigError(
                f"{where}: not a chatcontract baseline (format {BASELINE_FORMAT}); "
                "write one with 'chatcontract baseline accept'"
            )
        contract = data.get("contract") or {}
        if not isinstance(contract, Mapping):
            raise ConfigError(f"{where}.contract: expected an object")
        source, accepted_at = data.get("source"), data.get("accepted_at")
        if not isinstance(source, str) or not isinstance(accepted_at, str):
            raise ConfigError(f"{where}: source and accepted_at must be text")
        name, provider = contract.get("name"), contract.get("provider")
        verdict = data.get("verdict")
        return cls(
            observation=Observation.from_dict(
                data.get("observed"), where=f"{where}.observed"
            ).without_models(MADE_UP_MODELS),
            source=source,
            accepted_at=accepted_at,
            contract_name=name if isinstance(name, str) else None,
            provider=provider if isinstance(provider, str) else None,
            target=TargetIdentity.from_dict(data.get("target")),
            verdict=verdict if isinstance(verdict, str) else None,
            forced=data.get("forced") is True,
        )

    def save(self, path: str | Path) -> None:
        """Write the baseline as sorted, indented JSON (stable diffs in git)."""
        target = Path(path)
        if not target.parent.exists():
            raise ConfigError(f"{path}: the directory {target.parent} does not exist")
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read a baseline file; ``ConfigError`` when it is missing or malformed."""
        return cls.from_dict(
            _read_json(
                path,
                missing=(f"{path}: no baseline; record one with 'chatcontract baseline accept'"),
            ),
            where=str(path),
        )


def _read_json(path: str | Path, *, missing: str) -> Any:
    try:
        return read_json_file(path)
    except FileNotFoundError:
        raise ConfigError(missing) from None
